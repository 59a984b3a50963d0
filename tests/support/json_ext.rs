//! JSON in the tests is `serde_json`'s [`Value`](serde_json::Value), under the testkit's old
//! name [`Json`], with the few helpers the old hand-written type had ([`JsonExt`]).
//!
//! Indexing never panics: a missing key or index yields `Null` (serde_json's own rule), so
//! assertions read `report["targets"][0]["outcome"].as_str()`, and `report["status"] == 13` or
//! `t["outcome"] == "thawed"` compare directly.
//!
//! # Migrating from the old `Json`
//! - `Json::parse(text)` stays (from [`JsonExt`]; `Err` is serde_json's message as a `String`);
//! - `j.as_array()` returned a slice (empty for a non-array): that is now [`JsonExt::items`].
//!   serde_json's own `as_array()` returns `Option<&Vec<Json>>`, so `.as_array().iter()`
//!   would iterate over the option: write `.items()`;
//! - `j.has(key)` and `j.str_array()` are [`JsonExt`] methods; `get`, `as_str`, `as_i64`,
//!   `as_f64`, `as_bool`, `is_null`, `is_array` are serde_json's own (`as_i64` is `None` for
//!   a number written with a fraction or exponent, e.g. `3.0`);
//! - the variants are serde_json's (`Json::Null`, `Json::String`, `Json::Number`, ...).
//!
//! `use quiesce_testkit::*;` brings both `Json` and `JsonExt` into scope.

pub use serde_json::Value as Json;

/// What the old testkit `Json` had and serde_json's `Value` lacks.
pub trait JsonExt {
    /// Parses one JSON document (surrounding whitespace allowed, nothing else).
    fn parse(text: &str) -> Result<Json, String>;
    /// True if this is an object with member `key` (even if its value is null).
    fn has(&self, key: &str) -> bool;
    /// The elements of an array; an empty slice for anything else.
    fn items(&self) -> &[Json];
    /// The strings of an array of strings (other elements are skipped).
    fn str_array(&self) -> Vec<&str>;
}

impl JsonExt for Json {
    fn parse(text: &str) -> Result<Json, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    fn has(&self, key: &str) -> bool {
        self.as_object().is_some_and(|m| m.contains_key(key))
    }

    fn items(&self) -> &[Json] {
        self.as_array().map_or(&[], Vec::as_slice)
    }

    fn str_array(&self) -> Vec<&str> {
        self.items().iter().filter_map(Json::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_report_and_missing_parts_are_null() {
        let j = Json::parse(
            r#" {"status": 13, "targets": [{"outcome": "thawed", "errno": 0}], "log": ["a", 1, "b"], "none": null} "#,
        )
        .unwrap();
        assert_eq!(j["status"].as_i64(), Some(13));
        assert_eq!(j["targets"][0]["outcome"].as_str(), Some("thawed"));
        assert!(j["targets"][5]["outcome"].is_null() && j["nope"]["deeper"].is_null());
        assert_eq!(j["targets"].items().len(), 1);
        assert!(j["status"].items().is_empty() && j["nope"].items().is_empty());
        assert_eq!(j["log"].str_array(), ["a", "b"]);
        assert!(j.has("none") && !j.has("nope") && !j["status"].has("x"));
        assert!(j["targets"][0]["outcome"] == "thawed" && j["status"] == 13);
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "1 2", "\"\\x\""] {
            assert!(Json::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
