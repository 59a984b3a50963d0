//! Unit tests of the session machine with a fake clock.

use super::*;

const MS: u64 = 1_000_000;
const T0: u64 = 1_000 * MS;

/// Answers every action the way `outcome` says and records the actions taken.
struct Driver {
    now: u64,
    actions: heapless::Vec<Action, 64>,
    /// Every target whose freeze was issued, in issue order (waves expanded).
    issued: heapless::Vec<usize, 16>,
}

impl Driver {
    fn new() -> Self {
        Driver {
            now: T0,
            actions: heapless::Vec::new(),
            issued: heapless::Vec::new(),
        }
    }

    /// Runs the session; `freeze` and `thaw` give each call's result and duration, `wait`
    /// gives the controller's answer (with the time it comes) or `None` to let time run.
    fn run<const N: usize>(
        &mut self,
        s: &mut Session<N>,
        freeze: impl Fn(usize) -> (Result<(), i32>, u64),
        thaw: impl Fn(usize) -> Result<(), i32>,
        wait: impl Fn(u64) -> Option<(Event, u64)>,
    ) -> Status {
        for _ in 0..64 {
            let a = s.next(self.now);
            self.actions.push(a).unwrap();
            let ev = match a {
                Action::FreezeWave { first, count } => {
                    // All issued at once; reported last first, to show that order does not
                    // matter. The clock advances by the slowest.
                    let start = self.now;
                    let mut slowest = 0;
                    let mut events: heapless::Vec<Event, 16> = heapless::Vec::new();
                    for &i in &s.order()[first..first + count] {
                        let i = usize::from(i);
                        self.issued.push(i).unwrap();
                        let (r, took) = freeze(i);
                        slowest = slowest.max(took);
                        let end = start + took;
                        events
                            .push(match r {
                                Ok(()) => Event::Froze {
                                    target: i,
                                    start,
                                    end,
                                },
                                Err(errno) => Event::FreezeFailed {
                                    target: i,
                                    errno,
                                    start,
                                    end,
                                },
                            })
                            .unwrap();
                    }
                    self.now += slowest;
                    let last = events.remove(0);
                    for ev in events.iter().rev() {
                        s.handle(*ev).unwrap();
                    }
                    last
                }
                Action::Freeze(i) => {
                    self.issued.push(i).unwrap();
                    let (r, took) = freeze(i);
                    let start = self.now;
                    self.now += took;
                    let end = self.now;
                    match r {
                        Ok(()) => Event::Froze {
                            target: i,
                            start,
                            end,
                        },
                        Err(errno) => Event::FreezeFailed {
                            target: i,
                            errno,
                            start,
                            end,
                        },
                    }
                }
                Action::Notify => Event::Notified { at: self.now },
                Action::Wait { until } => match wait(self.now) {
                    Some((ev, at)) if at < until => {
                        self.now = at;
                        ev
                    }
                    _ => {
                        self.now = until;
                        continue;
                    }
                },
                Action::Thaw(i) => {
                    let start = self.now;
                    self.now += MS / 10;
                    let end = self.now;
                    match thaw(i) {
                        Ok(()) => Event::Thawed {
                            target: i,
                            start,
                            end,
                        },
                        Err(errno) => Event::ThawFailed {
                            target: i,
                            errno,
                            start,
                            end,
                        },
                    }
                }
                Action::Done(st) => return st,
            };
            s.handle(ev).unwrap();
        }
        panic!("session did not finish: {:?}", self.actions);
    }

    fn freezes(&self) -> heapless::Vec<usize, 16> {
        self.issued.clone()
    }

    fn thaws(&self) -> heapless::Vec<usize, 16> {
        self.actions
            .iter()
            .filter_map(|a| {
                if let Action::Thaw(i) = a {
                    Some(*i)
                } else {
                    None
                }
            })
            .collect()
    }
}

fn ok_freeze(_: usize) -> (Result<(), i32>, u64) {
    (Ok(()), MS)
}

/// Every freeze succeeds in 1 ms but target `at`'s, which fails with `errno` after `took` ns.
fn freeze_fails(at: usize, errno: i32, took: u64) -> impl Fn(usize) -> (Result<(), i32>, u64) {
    move |i| {
        if i == at {
            (Err(errno), took)
        } else {
            (Ok(()), MS)
        }
    }
}

fn ok_thaw(_: usize) -> Result<(), i32> {
    Ok(())
}

fn ack_after(ms: u64) -> impl Fn(u64) -> Option<(Event, u64)> {
    move |now| Some((Event::Acknowledged { at: now + ms * MS }, now + ms * MS))
}

#[test]
fn success_freezes_in_order_and_thaws_in_reverse() {
    let mut s = Session::<4>::new(&[2, 0, 1], 5_000 * MS).unwrap();
    let mut d = Driver::new();
    let st = d.run(&mut s, ok_freeze, ok_thaw, ack_after(100));
    assert_eq!(st, Status::Ok);
    assert_eq!(&d.freezes()[..], &[2, 0, 1]);
    assert_eq!(&d.thaws()[..], &[1, 0, 2]);
    assert_eq!(s.end(), End::Acknowledged);
    assert_eq!(s.consistency(), Consistency::FileSystem);
    assert!(s.is_done() && !s.anything_frozen());
    assert_eq!(s.deadline(), Some(T0 + 5_000 * MS));
    // Three freezes of 1 ms, 100 ms await, three thaws of 0.1 ms.
    assert_eq!(s.window_ns(), Some(3 * MS + 100 * MS + 3 * MS / 10));
    for i in 0..3 {
        let r = s.target(i).unwrap();
        assert_eq!(r.outcome, Outcome::Thawed);
        assert_eq!(r.freeze_ns, MS);
        assert_eq!(r.thaw_ns, MS / 10);
    }
    // Notify comes after the last freeze and before the wait.
    let pos = |x: &Action| d.actions.iter().position(|a| a == x).unwrap();
    assert!(pos(&Action::Freeze(1)) < pos(&Action::Notify));
    assert!(matches!(
        d.actions[pos(&Action::Notify) + 1],
        Action::Wait { .. }
    ));
}

#[test]
fn failure_in_the_middle_thaws_what_was_frozen_in_reverse() {
    let mut s = Session::<4>::new(&[0, 1, 2, 3], 5_000 * MS).unwrap();
    let mut d = Driver::new();
    let eio = 5;
    let st = d.run(&mut s, freeze_fails(2, eio, MS), ok_thaw, ack_after(1));
    assert_eq!(st, Status::FreezeFailed);
    assert_eq!(&d.freezes()[..], &[0, 1, 2]);
    assert_eq!(&d.thaws()[..], &[1, 0]);
    assert!(!d.actions.contains(&Action::Notify), "never notified");
    assert_eq!(s.target(2).unwrap().outcome, Outcome::FreezeFailed);
    assert_eq!(s.target(2).unwrap().errno, eio);
    assert_eq!(s.target(3).unwrap().outcome, Outcome::NotAttempted);
    assert_eq!(s.end(), End::FreezeFailed);
    assert_eq!(s.consistency(), Consistency::None);
}

#[test]
fn ebusy_means_another_holder_and_theirs_is_not_thawed() {
    let mut s = Session::<4>::new(&[0, 1], 5_000 * MS).unwrap();
    let mut d = Driver::new();
    let st = d.run(&mut s, freeze_fails(1, EBUSY, 0), ok_thaw, ack_after(1));
    assert_eq!(st, Status::FrozenByOther);
    assert_eq!(&d.thaws()[..], &[0], "target 1 is theirs, never thawed");
}

#[test]
fn first_freeze_failing_thaws_nothing() {
    let mut s = Session::<2>::new(&[1, 0], 5_000 * MS).unwrap();
    let mut d = Driver::new();
    let st = d.run(&mut s, |_| (Err(95), 0), ok_thaw, ack_after(1));
    assert_eq!(st, Status::FreezeFailed);
    assert!(d.thaws().is_empty());
    assert_eq!(s.window_ns(), None);
}

#[test]
fn deadline_in_await_thaws_everything() {
    let mut s = Session::<2>::new(&[0, 1], 2_000 * MS).unwrap();
    let mut d = Driver::new();
    let st = d.run(&mut s, ok_freeze, ok_thaw, |_| None);
    assert_eq!(st, Status::Timeout);
    assert_eq!(&d.thaws()[..], &[1, 0]);
    assert_eq!(s.end(), End::Deadline);
    assert_eq!(s.ended_at(), T0 + 2_000 * MS);
    assert_eq!(s.consistency(), Consistency::None);
}

#[test]
fn acknowledgement_after_the_deadline_does_not_count() {
    let mut s = Session::<1>::new(&[0], 2_000 * MS).unwrap();
    let mut d = Driver::new();
    let st = d.run(&mut s, ok_freeze, ok_thaw, ack_after(5_000));
    assert_eq!(st, Status::Timeout);
}

#[test]
fn a_freeze_that_returns_after_the_deadline_is_a_timeout() {
    // Failure 4: a freeze that took 8 s must not "succeed" with a 5 s timeout.
    let mut s = Session::<3>::new(&[0, 1, 2], 5_000 * MS).unwrap();
    let mut d = Driver::new();
    let st = d.run(
        &mut s,
        |i| (Ok(()), if i == 1 { 8_000 * MS } else { MS }),
        ok_thaw,
        ack_after(1),
    );
    assert_eq!(st, Status::Timeout);
    assert_eq!(
        &d.freezes()[..],
        &[0, 1],
        "nothing more is frozen after the deadline"
    );
    assert_eq!(&d.thaws()[..], &[1, 0], "the late one is thawed too");
    assert_eq!(s.target(2).unwrap().outcome, Outcome::NotAttempted);
}

#[test]
fn deadline_between_freezes_stops_freezing() {
    let mut s = Session::<3>::new(&[0, 1, 2], 10 * MS).unwrap();
    let mut d = Driver::new();
    // Each freeze ends exactly... 6 ms; the second ends at 12 ms > deadline.
    let st = d.run(&mut s, |_| (Ok(()), 6 * MS), ok_thaw, ack_after(1));
    assert_eq!(st, Status::Timeout);
    assert_eq!(&d.freezes()[..], &[0, 1]);
    assert_eq!(&d.thaws()[..], &[1, 0]);
}

#[test]
fn controller_gone_thaws_and_is_not_acknowledged() {
    let mut s = Session::<2>::new(&[0, 1], 5_000 * MS).unwrap();
    let mut d = Driver::new();
    let st = d.run(&mut s, ok_freeze, ok_thaw, |now| {
        Some((Event::ControllerGone { at: now + MS }, now + MS))
    });
    assert_eq!(st, Status::NotAcknowledged);
    assert_eq!(s.end(), End::ControllerGone);
    assert_eq!(&d.thaws()[..], &[1, 0]);
    assert_eq!(s.consistency(), Consistency::None);
}

#[test]
fn snapshot_failure_and_interruption_thaw_with_their_status() {
    for (ev, st, end) in [
        (
            Event::SnapshotFailed { at: 0 },
            Status::SnapshotFailed,
            End::SnapshotFailed,
        ),
        (
            Event::Interrupted { at: 0 },
            Status::Interrupted,
            End::Interrupted,
        ),
    ] {
        let mut s = Session::<2>::new(&[0, 1], 5_000 * MS).unwrap();
        let mut d = Driver::new();
        let got = d.run(&mut s, ok_freeze, ok_thaw, |now| Some((ev, now + MS)));
        assert_eq!(got, st);
        assert_eq!(s.end(), end);
        assert_eq!(&d.thaws()[..], &[1, 0]);
    }
}

#[test]
fn a_failing_thaw_is_reported_and_the_rest_still_thaw() {
    let mut s = Session::<3>::new(&[0, 1, 2], 5_000 * MS).unwrap();
    let mut d = Driver::new();
    let st = d.run(
        &mut s,
        ok_freeze,
        |i| if i == 1 { Err(5) } else { Ok(()) },
        ack_after(1),
    );
    assert_eq!(st, Status::ThawFailed);
    assert_eq!(&d.thaws()[..], &[2, 1, 0]);
    assert_eq!(s.target(1).unwrap().outcome, Outcome::ThawFailed);
    assert_eq!(s.target(1).unwrap().errno, 5);
    assert_eq!(s.target(0).unwrap().outcome, Outcome::Thawed);
    assert_eq!(s.consistency(), Consistency::None);
}

#[test]
fn einval_on_thaw_means_someone_else_thawed_suspect() {
    let mut s = Session::<2>::new(&[0, 1], 5_000 * MS).unwrap();
    let mut d = Driver::new();
    let st = d.run(
        &mut s,
        ok_freeze,
        |i| if i == 0 { Err(EINVAL) } else { Ok(()) },
        ack_after(1),
    );
    assert_eq!(st, Status::Suspect);
    assert_eq!(s.target(0).unwrap().outcome, Outcome::ThawedByOther);
    assert_eq!(s.consistency(), Consistency::None);
}

#[test]
fn thaw_failure_outranks_the_freeze_failure() {
    let mut s = Session::<3>::new(&[0, 1, 2], 5_000 * MS).unwrap();
    let mut d = Driver::new();
    let st = d.run(
        &mut s,
        freeze_fails(2, 5, 0),
        |i| if i == 0 { Err(5) } else { Ok(()) },
        ack_after(1),
    );
    assert_eq!(st, Status::ThawFailed);
}

#[test]
fn events_out_of_turn_are_rejected_without_effect() {
    let mut s = Session::<2>::new(&[0, 1], 5_000 * MS).unwrap();
    assert_eq!(
        s.handle(Event::Acknowledged { at: 0 }),
        Err(UnexpectedEvent)
    );
    assert_eq!(s.next(T0), Action::Freeze(0));
    // Wrong target.
    let bad = Event::Froze {
        target: 1,
        start: T0,
        end: T0,
    };
    assert_eq!(s.handle(bad), Err(UnexpectedEvent));
    assert_eq!(
        s.handle(Event::Thawed {
            target: 0,
            start: T0,
            end: T0
        }),
        Err(UnexpectedEvent)
    );
    assert!(!s.anything_frozen());
    // Asking again repeats the same action.
    assert_eq!(s.next(T0), Action::Freeze(0));
}

#[test]
fn bad_parameters_are_refused() {
    assert_eq!(
        Session::<2>::new(&[0, 1, 2], MS).unwrap_err(),
        SessionError::TooManyTargets
    );
    assert_eq!(
        Session::<2>::new(&[0, 0], MS).unwrap_err(),
        SessionError::BadOrder
    );
    assert_eq!(
        Session::<2>::new(&[1], MS).unwrap_err(),
        SessionError::BadOrder
    );
    assert_eq!(
        Session::<2>::new(&[0], 0).unwrap_err(),
        SessionError::ZeroTimeout
    );
}

#[test]
fn a_session_without_targets_is_refused() {
    // It would freeze nothing and then claim a consistent snapshot.
    assert_eq!(
        Session::<1>::new(&[], MS).unwrap_err(),
        SessionError::NoTargets
    );
    assert_eq!(
        Session::<1>::new(&[], 0).unwrap_err(),
        SessionError::NoTargets,
        "checked first"
    );
    assert_eq!(
        Session::<0>::new(&[], MS).unwrap_err(),
        SessionError::NoTargets
    );
    assert!(Session::<1>::new(&[0], MS).is_ok(), "one target is enough");
}

#[test]
fn a_freeze_in_flight_at_the_deadline_is_abandoned_and_the_rest_thawed_in_reverse() {
    // Failure 5: FIFREEZE stuck in the kernel. The executor gives up on it at the deadline.
    let mut s = Session::<3>::new(&[0, 1, 2], 2_000 * MS).unwrap();
    assert_eq!(s.next(T0), Action::Freeze(0));
    s.handle(Event::Froze {
        target: 0,
        start: T0,
        end: T0 + MS,
    })
    .unwrap();
    assert_eq!(s.next(T0 + MS), Action::Freeze(1));
    let at = T0 + 2_000 * MS;
    s.handle(Event::FreezeInFlight {
        target: 1,
        start: T0 + MS,
        at,
    })
    .unwrap();
    assert_eq!(s.next(at), Action::Thaw(0), "the confirmed-frozen one");
    s.handle(Event::Thawed {
        target: 0,
        start: at,
        end: at + MS,
    })
    .unwrap();
    assert_eq!(s.next(at + MS), Action::Done(Status::Timeout));
    assert_eq!(s.end(), End::Deadline);
    assert_eq!(s.target(1).unwrap().outcome, Outcome::InFlight);
    assert_eq!(s.target(1).unwrap().freeze_ns, 1_999 * MS);
    assert_eq!(s.target(2).unwrap().outcome, Outcome::NotAttempted);
    assert_eq!(s.consistency(), Consistency::None);
    assert!(!s.anything_frozen());
}

#[test]
fn an_in_flight_first_freeze_thaws_nothing() {
    let mut s = Session::<2>::new(&[1, 0], 2_000 * MS).unwrap();
    assert_eq!(s.next(T0), Action::Freeze(1));
    s.handle(Event::FreezeInFlight {
        target: 1,
        start: T0,
        at: T0 + 2_000 * MS,
    })
    .unwrap();
    assert_eq!(s.next(T0 + 2_000 * MS), Action::Done(Status::Timeout));
    assert_eq!(s.window_ns(), None);
}

#[test]
fn if_frozen_skip_leaves_theirs_out_and_freezes_the_rest() {
    let mut s = Session::<4>::new(&[0, 1, 2], 5_000 * MS)
        .unwrap()
        .with_if_frozen(IfFrozen::Skip);
    let mut d = Driver::new();
    let st = d.run(&mut s, freeze_fails(1, EBUSY, 0), ok_thaw, ack_after(1));
    assert_eq!(st, Status::Ok);
    assert_eq!(&d.freezes()[..], &[0, 1, 2]);
    assert_eq!(&d.thaws()[..], &[2, 0], "theirs is never thawed");
    assert_eq!(s.target(1).unwrap().outcome, Outcome::NotCovered);
    assert_eq!(s.target(1).unwrap().errno, EBUSY);
    assert_eq!(s.consistency(), Consistency::FileSystem);
}

#[test]
fn if_frozen_skip_with_nothing_left_fails_as_frozen_by_other() {
    let mut s = Session::<2>::new(&[0, 1], 5_000 * MS)
        .unwrap()
        .with_if_frozen(IfFrozen::Skip);
    let mut d = Driver::new();
    let st = d.run(&mut s, |_| (Err(EBUSY), 0), ok_thaw, ack_after(1));
    assert_eq!(st, Status::FrozenByOther);
    assert!(d.thaws().is_empty());
    assert!(!d.actions.contains(&Action::Notify));
    // Other errors still fail the session under Skip.
    let mut s = Session::<2>::new(&[0, 1], 5_000 * MS)
        .unwrap()
        .with_if_frozen(IfFrozen::Skip);
    let mut d = Driver::new();
    let st = d.run(&mut s, freeze_fails(1, 5, 0), ok_thaw, ack_after(1));
    assert_eq!(st, Status::FreezeFailed);
    assert_eq!(&d.thaws()[..], &[0]);
}

#[test]
fn a_thaw_done_by_the_guardian_is_not_a_foreign_thaw_but_a_timeout() {
    let mut s = Session::<2>::new(&[0, 1], 5_000 * MS).unwrap();
    assert_eq!(s.next(T0), Action::Freeze(0));
    s.handle(Event::Froze {
        target: 0,
        start: T0,
        end: T0,
    })
    .unwrap();
    assert_eq!(s.next(T0), Action::Freeze(1));
    s.handle(Event::Froze {
        target: 1,
        start: T0,
        end: T0,
    })
    .unwrap();
    assert_eq!(s.next(T0), Action::Notify);
    s.handle(Event::Notified { at: T0 }).unwrap();
    s.handle(Event::Acknowledged { at: T0 + MS }).unwrap();
    assert_eq!(s.next(T0 + 9_000 * MS), Action::Thaw(1));
    s.handle(Event::ThawedByGuardian {
        target: 1,
        start: T0 + 7_000 * MS,
        end: T0 + 7_001 * MS,
    })
    .unwrap();
    assert_eq!(s.next(T0 + 9_000 * MS), Action::Thaw(0));
    s.handle(Event::Thawed {
        target: 0,
        start: T0 + 9_000 * MS,
        end: T0 + 9_001 * MS,
    })
    .unwrap();
    assert_eq!(s.next(T0 + 9_001 * MS), Action::Done(Status::Timeout));
    assert_eq!(s.target(1).unwrap().outcome, Outcome::ThawedByGuardian);
    assert_eq!(s.consistency(), Consistency::None);
}

/// Waves of two: 0 and 1 together, 2 alone (a storage dependency), 3 and 4 together.
fn waved(timeout_ms: u64) -> Session<8> {
    Session::<8>::new(&[0, 1, 2, 3, 4], timeout_ms * MS)
        .unwrap()
        .with_wave_starts(&[true, false, true, true, false])
}

#[test]
fn waves_freeze_together_and_thaw_one_by_one_in_reverse() {
    let mut s = waved(5_000);
    assert_eq!(s.wave_count(), 3);
    let waves: heapless::Vec<usize, 8> = (0..5).map(|p| s.wave_of(p)).collect();
    assert_eq!(&waves[..], &[0, 0, 1, 2, 2]);
    let mut d = Driver::new();
    let took = |i: usize| (Ok(()), (i as u64 + 1) * MS);
    let st = d.run(&mut s, took, ok_thaw, ack_after(100));
    assert_eq!(st, Status::Ok);
    assert_eq!(
        &d.actions[..3],
        &[
            Action::FreezeWave { first: 0, count: 2 },
            Action::Freeze(2),
            Action::FreezeWave { first: 3, count: 2 },
        ]
    );
    assert_eq!(&d.thaws()[..], &[4, 3, 2, 1, 0]);
    // Waves take their slowest member: 2 + 3 + 5 ms, then 100 ms, then five 0.1 ms thaws.
    assert_eq!(s.window_ns(), Some(10 * MS + 100 * MS + 5 * MS / 10));
    assert_eq!(s.target(4).unwrap().freeze_ns, 5 * MS);
    assert_eq!(s.consistency(), Consistency::FileSystem);
}

#[test]
fn a_failure_in_a_wave_thaws_the_whole_wave_and_everything_before() {
    let mut s = waved(5_000);
    let mut d = Driver::new();
    let st = d.run(&mut s, freeze_fails(3, 5, MS), ok_thaw, ack_after(1));
    assert_eq!(st, Status::FreezeFailed);
    assert_eq!(&d.freezes()[..], &[0, 1, 2, 3, 4]);
    // 4 froze beside the failing 3: it is thawed, and so is everything of the earlier waves.
    assert_eq!(&d.thaws()[..], &[4, 2, 1, 0]);
    assert_eq!(s.end(), End::FreezeFailed);
    assert_eq!(s.target(3).unwrap().outcome, Outcome::FreezeFailed);
    assert!(!d.actions.contains(&Action::Notify));
}

#[test]
fn a_wave_decides_only_when_every_report_is_in() {
    let mut s = waved(1_000);
    assert_eq!(s.next(T0), Action::FreezeWave { first: 0, count: 2 });
    s.handle(Event::FreezeFailed {
        target: 1,
        errno: 5,
        start: T0,
        end: T0 + MS,
    })
    .unwrap();
    // A second report for the same target, or one outside the wave, is refused.
    let again = Event::Froze {
        target: 1,
        start: T0,
        end: T0 + MS,
    };
    assert_eq!(s.handle(again), Err(UnexpectedEvent));
    let outside = Event::Froze {
        target: 2,
        start: T0,
        end: T0 + MS,
    };
    assert_eq!(s.handle(outside), Err(UnexpectedEvent));
    assert_eq!(
        s.handle(Event::Interrupted { at: T0 }),
        Err(UnexpectedEvent)
    );
    // Still waiting for 0: asking again repeats the wave.
    assert_eq!(s.next(T0 + MS), Action::FreezeWave { first: 0, count: 2 });
    s.handle(Event::Froze {
        target: 0,
        start: T0,
        end: T0 + 2 * MS,
    })
    .unwrap();
    assert_eq!(s.next(T0 + 2 * MS), Action::Thaw(0));
}

#[test]
fn a_wave_member_in_flight_at_the_deadline_times_out_and_the_rest_is_thawed() {
    let mut s = waved(1_000);
    assert_eq!(s.next(T0), Action::FreezeWave { first: 0, count: 2 });
    s.handle(Event::Froze {
        target: 0,
        start: T0,
        end: T0 + MS,
    })
    .unwrap();
    s.handle(Event::FreezeInFlight {
        target: 1,
        start: T0,
        at: T0 + 1_000 * MS,
    })
    .unwrap();
    assert_eq!(s.next(T0 + 1_000 * MS), Action::Thaw(0));
    s.handle(Event::Thawed {
        target: 0,
        start: T0 + 1_000 * MS,
        end: T0 + 1_001 * MS,
    })
    .unwrap();
    assert_eq!(s.next(T0 + 1_001 * MS), Action::Done(Status::Timeout));
    assert_eq!(s.end(), End::Deadline);
    assert_eq!(s.target(1).unwrap().outcome, Outcome::InFlight);
    assert_eq!(s.target(2).unwrap().outcome, Outcome::NotAttempted);
}

#[test]
fn a_wave_that_returns_after_the_deadline_is_a_timeout() {
    let mut s = waved(10);
    let mut d = Driver::new();
    let st = d.run(&mut s, |_| (Ok(()), 20 * MS), ok_thaw, ack_after(1));
    assert_eq!(st, Status::Timeout);
    assert_eq!(&d.freezes()[..], &[0, 1], "nothing after a late wave");
    assert_eq!(&d.thaws()[..], &[1, 0]);
    assert_eq!(s.consistency(), Consistency::None);
}

#[test]
fn waves_with_skip_leave_theirs_out_and_fail_when_nothing_is_ours() {
    let mut s = waved(5_000).with_if_frozen(IfFrozen::Skip);
    let mut d = Driver::new();
    let st = d.run(&mut s, freeze_fails(4, EBUSY, 0), ok_thaw, ack_after(1));
    assert_eq!(st, Status::Ok);
    assert_eq!(s.target(4).unwrap().outcome, Outcome::NotCovered);
    assert_eq!(&d.thaws()[..], &[3, 2, 1, 0]);

    let mut s = Session::<4>::new(&[0, 1], 5_000 * MS)
        .unwrap()
        .with_wave_starts(&[true, false])
        .with_if_frozen(IfFrozen::Skip);
    let mut d = Driver::new();
    let st = d.run(&mut s, |_| (Err(EBUSY), 0), ok_thaw, ack_after(1));
    assert_eq!(st, Status::FrozenByOther);
    assert!(d.thaws().is_empty());
    assert!(!d.actions.contains(&Action::Notify));
}

#[test]
fn wave_starts_beyond_the_slice_and_at_zero_are_forced() {
    let s = Session::<4>::new(&[0, 1, 2], 5_000 * MS)
        .unwrap()
        .with_wave_starts(&[false, false]);
    // Position 0 always starts a wave; position 2 is not covered by the slice.
    assert_eq!(s.wave_count(), 2);
}
