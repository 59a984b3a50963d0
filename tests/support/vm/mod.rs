//! The real-VM test rig: boots Debian's kernel in `qemu-system-x86_64` with an initramfs made
//! here (busybox, kernel modules, LVM, cryptsetup, mdadm, mkfs tools, optionally the static
//! `quiesce`), on disks that are sparse images in the test's scratch directory. For what this
//! machine's kernel cannot show: device-mapper, md, NVMe and virtio disks with serials.
//!
//! ```no_run
//! use quiesce_testkit::{vm::Vm, Scratch};
//! let scratch = Scratch::new();
//! let run = Vm::new()
//!     .virtio_disk("vol0123456789abcdef0", 64)
//!     .virtio_disk_partitioned("data-disk", 64, &[16, 16])
//!     .modules(&["ext4"])
//!     .run(&scratch, "mkfs.ext4 -q /dev/vdb1 && cat /sys/block/vda/serial");
//! assert_eq!(run.assert_ok().trim(), "vol0123456789abcdef0");
//! ```
//!
//! - The script runs as the guest's `/init`'s child, as root, with `PATH` holding busybox and
//!   the tools; its stdout+stderr come back over the second serial port (`ttyS1`) and end with
//!   a marker carrying its exit status; the kernel console (`ttyS0`) is kept apart and printed
//!   when a run fails ([`VmRun::assert_ok`]) or when the test panics while the VM runs.
//! - No udev: devtmpfs makes the nodes; `/init` makes `/dev/disk/by-id/virtio-SERIAL`,
//!   `/dev/disk/by-id/nvme-MODEL_SERIAL` and `/dev/virtio-ports/NAME`; LVM and libdevmapper make
//!   `/dev/mapper` and `/dev/VG` themselves (`DM_DISABLE_UDEV=1`, an lvm.conf without udev).
//! - Acceleration: KVM if a probe boot under KVM prints the kernel banner, else TCG
//!   (`QUIESCE_VM_ACCEL=kvm|tcg` overrides). Each run has a timeout; qemu is killed on drop.
//! - Nothing in the guest reaches the host's filesystems: its only disks are the images.

mod cpio;

use std::fmt::Write as _;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use cpio::Cpio;

use crate::{repo_root, run_timeout, Json, JsonExt, Scratch};

/// The end marker the guest's /init writes after the script, with its exit status.
const EXIT_MARKER: &str = "@@QUIESCE-VM-EXIT ";
/// Modules every base image carries (a test loads only those it asks for, and virtio's).
const STANDARD_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "virtio_console",
    "nvme",
    "loop",
    "ext4",
    "xfs",
    "btrfs",
    "dm-mod",
    "dm-crypt",
    "raid1",
    "xts",
    "algif_skcipher",
];
/// Always loaded: the disks and ports are on virtio PCI.
const BOOT_MODULES: &[&str] = &["virtio_pci", "virtio_blk", "virtio_console"];
/// Host tools copied into the guest with their shared libraries.
const TOOLS: &[&str] = &[
    "/usr/sbin/lvm",
    "/usr/sbin/dmsetup",
    "/usr/sbin/cryptsetup",
    "/usr/sbin/mdadm",
    "/usr/sbin/mke2fs",
    "/usr/sbin/mkfs.ext4",
    "/usr/sbin/mkfs.xfs",
    "/usr/sbin/mkfs.btrfs",
    "/usr/bin/btrfs",
    "/usr/sbin/losetup",
    "/usr/sbin/blkid",
    "/usr/sbin/fsfreeze",
];
/// LVM's commands are links to `lvm`.
const LVM_COMMANDS: &[&str] = &[
    "pvcreate", "vgcreate", "lvcreate", "vgchange", "lvchange", "pvs", "vgs", "lvs", "vgremove",
    "lvremove", "pvscan", "vgscan",
];
/// The host packages the rig needs (installed by .ci/run).
pub const PACKAGES: &str =
    "qemu-system-x86 linux-image-amd64 busybox-static kmod lvm2 cryptsetup-bin mdadm \
     e2fsprogs xfsprogs btrfs-progs util-linux";

/// The bus a guest disk is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bus {
    /// virtio-blk: `/dev/vdX`, serial in `/sys/block/vdX/serial` (at most 20 bytes).
    Virtio,
    /// An NVMe controller with one namespace: `/dev/nvmeNn1`, serial in `device/serial`.
    Nvme,
}

/// A guest disk: a sparse raw image in the scratch directory.
#[derive(Clone, Debug)]
pub struct VmDisk {
    pub bus: Bus,
    pub serial: String,
    pub size_mib: u64,
    /// MBR primary partitions, sizes in MiB (starting at 1 MiB), if any.
    pub partitions: Vec<u64>,
    /// Another path to the image of disk number N (as multipath sees it): no image of its own.
    pub path_to: Option<usize>,
}

/// Which accelerator qemu uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

/// A VM to boot: disks, modules, files and options. See the module documentation.
#[derive(Clone, Debug)]
pub struct Vm {
    disks: Vec<VmDisk>,
    modules: Vec<String>,
    files: Vec<(String, Vec<u8>, u32)>,
    memory_mib: u32,
    timeout: Duration,
    guest_agent: bool,
    control: bool,
    quiesce: bool,
    tools: Vec<PathBuf>,
}

impl Default for Vm {
    fn default() -> Self {
        Vm::new()
    }
}

impl Vm {
    pub fn new() -> Vm {
        Vm {
            disks: Vec::new(),
            modules: Vec::new(),
            files: Vec::new(),
            memory_mib: 1024,
            timeout: Duration::from_secs(180),
            guest_agent: false,
            control: false,
            quiesce: false,
            tools: Vec::new(),
        }
    }

    /// The disks, in the order the guest sees them (per bus).
    pub fn disks(&self) -> &[VmDisk] {
        &self.disks
    }

    /// Adds a disk.
    pub fn disk(mut self, disk: VmDisk) -> Vm {
        self.disks.push(disk);
        self
    }

    /// A virtio disk of `size_mib` MiB with this serial (virtio keeps at most 20 bytes of it).
    pub fn virtio_disk(self, serial: &str, size_mib: u64) -> Vm {
        self.disk(VmDisk {
            bus: Bus::Virtio,
            serial: serial.into(),
            size_mib,
            partitions: Vec::new(),
            path_to: None,
        })
    }

    /// A second virtio device on the image of disk number `of` (0-based, in the order added),
    /// with this serial: two paths to one disk, for multipath.
    pub fn virtio_path_to(self, of: usize, serial: &str) -> Vm {
        let size_mib = self.disks[of].size_mib;
        self.disk(VmDisk {
            bus: Bus::Virtio,
            serial: serial.into(),
            size_mib,
            partitions: Vec::new(),
            path_to: Some(of),
        })
    }

    /// A virtio disk with an MBR partition table of these partition sizes (MiB).
    pub fn virtio_disk_partitioned(self, serial: &str, size_mib: u64, parts: &[u64]) -> Vm {
        self.disk(VmDisk {
            bus: Bus::Virtio,
            serial: serial.into(),
            size_mib,
            partitions: parts.to_vec(),
            path_to: None,
        })
    }

    /// An NVMe disk (its own controller, namespace 1) with this serial.
    pub fn nvme_disk(self, serial: &str, size_mib: u64) -> Vm {
        self.disk(VmDisk {
            bus: Bus::Nvme,
            serial: serial.into(),
            size_mib,
            partitions: Vec::new(),
            path_to: None,
        })
    }

    /// Kernel modules to load before the script (with their dependencies), e.g. `dm-crypt`.
    pub fn modules(mut self, names: &[&str]) -> Vm {
        self.modules.extend(names.iter().map(|s| s.to_string()));
        self
    }

    /// A file in the guest (absolute path).
    pub fn file(mut self, guest_path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> Vm {
        self.files.push((guest_path.into(), contents.into(), mode));
        self
    }

    /// Puts the static `quiesce` ([`static_quiesce`], built if needed) at `/usr/bin/quiesce`.
    pub fn with_quiesce(mut self) -> Vm {
        self.quiesce = true;
        self
    }

    /// Adds a virtio-serial port named `org.qemu.guest_agent.0` whose host end is a unix socket
    /// ([`RunningVm::guest_agent_socket`]); in the guest it is
    /// `/dev/virtio-ports/org.qemu.guest_agent.0`.
    pub fn guest_agent(mut self) -> Vm {
        self.guest_agent = true;
        self
    }

    /// Adds a second virtio-serial port, `org.quiesce.control` (in the guest
    /// `/dev/virtio-ports/org.quiesce.control`), whose host end is a unix socket
    /// ([`RunningVm::control_socket`]): a channel for a test to tell its guest script what to
    /// do next, apart from the port under test.
    pub fn control_port(mut self) -> Vm {
        self.control = true;
        self
    }

    /// Copies a host binary into the guest at the same path, with the shared libraries `ldd`
    /// lists (as the base image's tools), e.g. `/usr/sbin/qemu-ga`.
    pub fn host_tool(mut self, path: &str) -> Vm {
        self.tools.push(PathBuf::from(path));
        self
    }

    /// Guest memory (default 1024 MiB).
    pub fn memory_mib(mut self, mib: u32) -> Vm {
        self.memory_mib = mib;
        self
    }

    /// The time a whole run (boot, script, power-off) may take (default 180 s).
    pub fn timeout(mut self, t: Duration) -> Vm {
        self.timeout = t;
        self
    }

    /// Boots the VM with `script` (a busybox `sh` script) and waits for it to power off.
    pub fn run(self, scratch: &Scratch, script: &str) -> VmRun {
        self.start(scratch, script).wait()
    }

    /// Boots the VM with `script` and returns while it runs.
    pub fn start(self, scratch: &Scratch, script: &str) -> RunningVm {
        let dir = scratch.path(format!("vm-{}", next_id()));
        fs::create_dir_all(&dir).expect("create the VM's directory");
        let kernel = kernel();
        let initrd = dir.join("initrd.img");
        self.write_initrd(&initrd, &kernel, script);

        let console = dir.join("console.log");
        let output = dir.join("output.log");
        let accel = accel();
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
        ])
        .args(["-machine", "q35", "-smp", "1"])
        .args(["-m", &self.memory_mib.to_string()]);
        match accel {
            Accel::Kvm => cmd.args(["-accel", "kvm", "-cpu", "host"]),
            Accel::Tcg => cmd.args(["-accel", "tcg", "-cpu", "max"]),
        };
        cmd.arg("-kernel")
            .arg(&kernel.image)
            .arg("-initrd")
            .arg(&initrd)
            .args([
                "-append",
                "console=ttyS0 quiet loglevel=4 panic=-1 rdinit=/init mitigations=off",
            ])
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .arg("-serial")
            .arg(format!("file:{}", output.display()));
        let shared: Vec<bool> = (0..self.disks.len())
            .map(|i| {
                self.disks.iter().any(|d| d.path_to == Some(i)) || self.disks[i].path_to.is_some()
            })
            .collect();
        for (i, d) in self.disks.iter().enumerate() {
            let img = dir.join(format!("disk{}.img", d.path_to.unwrap_or(i)));
            if d.path_to.is_none() {
                make_image(&img, d);
            }
            // Two paths to one image: no image locking, the devices share writes.
            let (lock, share) = if shared[i] {
                (",file.locking=off", ",share-rw=on")
            } else {
                ("", "")
            };
            cmd.arg("-drive").arg(format!(
                "file={},if=none,id=d{i},format=raw,cache=unsafe,aio=threads{lock}",
                img.display()
            ));
            match d.bus {
                Bus::Virtio => cmd.arg("-device").arg(format!(
                    "virtio-blk-pci,drive=d{i},serial={}{share}",
                    d.serial
                )),
                Bus::Nvme => cmd
                    .arg("-device")
                    .arg(format!("nvme,drive=d{i},serial={}{share}", d.serial)),
            };
        }
        let qga = self.guest_agent.then(|| dir.join("qga.sock"));
        cmd.args(["-device", "virtio-serial-pci,id=vser0"]);
        if let Some(sock) = &qga {
            cmd.arg("-chardev")
                .arg(format!(
                    "socket,id=qga0,path={},server=on,wait=off",
                    sock.display()
                ))
                .args([
                    "-device",
                    "virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0",
                ]);
        }
        let control = self.control.then(|| dir.join("control.sock"));
        if let Some(sock) = &control {
            cmd.arg("-chardev")
                .arg(format!(
                    "socket,id=ctl0,path={},server=on,wait=off",
                    sock.display()
                ))
                .args([
                    "-device",
                    "virtserialport,bus=vser0.0,chardev=ctl0,name=org.quiesce.control",
                ]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                fs::File::create(dir.join("qemu.stderr")).expect("qemu stderr file"),
            ));
        let started = Instant::now();
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start qemu-system-x86_64 ({e}); install: apt-get install {PACKAGES}")
        });
        RunningVm {
            child: Some(child),
            dir,
            console,
            output,
            qga,
            control,
            started,
            timeout: self.timeout,
            accel,
        }
    }

    fn write_initrd(&self, path: &Path, kernel: &Kernel, script: &str) {
        let mut f = fs::File::create(path).expect("create initrd");
        f.write_all(base_image()).expect("write the base initramfs");
        // The test's own part: a second archive, which the kernel unpacks over the first.
        let mut c = Cpio::new();
        let mut names: Vec<&str> = BOOT_MODULES.to_vec();
        if self.disks.iter().any(|d| d.bus == Bus::Nvme) {
            names.push("nvme");
        }
        names.extend(self.modules.iter().map(String::as_str));
        let mut list = String::new();
        let mut seen = Vec::new();
        for m in names {
            for (ko, args) in module_chain(&kernel.version, m) {
                if seen.contains(&ko) {
                    continue;
                }
                if !STANDARD_MODULES.contains(&m) {
                    c.host_path(Path::new(&ko)).expect("copy a module");
                }
                let _ = writeln!(list, "{ko} {args}");
                seen.push(ko);
            }
        }
        c.file("/etc/quiesce-vm/modules", 0o644, list.as_bytes());
        let disks = self.disks.len().to_string();
        c.file("/etc/quiesce-vm/disks", 0o644, disks.as_bytes());
        let ports = (usize::from(self.guest_agent) + usize::from(self.control)).to_string();
        c.file("/etc/quiesce-vm/ports", 0o644, ports.as_bytes());
        c.file("/etc/quiesce-vm/test.sh", 0o755, script.as_bytes());
        if self.quiesce {
            let data = fs::read(static_quiesce()).expect("read the static quiesce");
            c.file("/usr/bin/quiesce", 0o755, &data);
        }
        for tool in &self.tools {
            assert!(
                tool.exists(),
                "{} is missing on the host: install its package",
                tool.display()
            );
            c.host_path(tool).expect("copy a tool");
            for lib in shared_libs(tool) {
                c.host_path(&lib).expect("copy a library");
            }
        }
        for (p, data, mode) in &self.files {
            c.file(p, *mode, data);
        }
        f.write_all(&c.finish())
            .expect("write the test's initramfs");
    }
}

fn next_id() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A sparse image; with partitions, an MBR (type 0x83) at its start.
fn make_image(path: &Path, d: &VmDisk) {
    let mut f = fs::File::create(path).expect("create a disk image");
    f.set_len(d.size_mib << 20).expect("size a disk image");
    if d.partitions.is_empty() {
        return;
    }
    assert!(d.partitions.len() <= 4, "MBR: at most 4 primary partitions");
    let mut mbr = [0u8; 512];
    let mut start: u64 = 2048; // sectors: 1 MiB
    for (i, mib) in d.partitions.iter().enumerate() {
        let sectors = mib << 11;
        assert!(
            (start + sectors) << 9 <= d.size_mib << 20,
            "partitions do not fit the disk"
        );
        let e = &mut mbr[446 + 16 * i..446 + 16 * (i + 1)];
        e[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]); // CHS: unused (LBA)
        e[4] = 0x83;
        e[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]);
        e[8..12].copy_from_slice(&(start as u32).to_le_bytes());
        e[12..16].copy_from_slice(&(sectors as u32).to_le_bytes());
        start += sectors;
    }
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    f.seek(SeekFrom::Start(0)).expect("seek");
    f.write_all(&mbr).expect("write the MBR");
}

/// A running VM; killed (and its console printed, if the test is panicking) on drop.
pub struct RunningVm {
    child: Option<Child>,
    pub dir: PathBuf,
    console: PathBuf,
    output: PathBuf,
    qga: Option<PathBuf>,
    control: Option<PathBuf>,
    started: Instant,
    timeout: Duration,
    accel: Accel,
}

impl RunningVm {
    /// The host end of the `org.qemu.guest_agent.0` port (with [`Vm::guest_agent`]).
    pub fn guest_agent_socket(&self) -> Option<&Path> {
        self.qga.as_deref()
    }

    /// The host end of the `org.quiesce.control` port (with [`Vm::control_port`]).
    pub fn control_socket(&self) -> Option<&Path> {
        self.control.as_deref()
    }

    /// What the script has printed so far (`\r` removed).
    pub fn output_so_far(&self) -> String {
        read_lossy(&self.output)
    }

    /// The guest's kernel console so far.
    pub fn console_so_far(&self) -> String {
        read_lossy(&self.console)
    }

    /// Waits until the script's output contains `needle`; false after `timeout` or if the VM
    /// stopped first.
    pub fn wait_for_output(&mut self, needle: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if self.output_so_far().contains(needle) {
                return true;
            }
            let exited = self
                .child
                .as_mut()
                .map(|c| !matches!(c.try_wait(), Ok(None)))
                .unwrap_or(true);
            if exited {
                return self.output_so_far().contains(needle);
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the guest to power off (killing it at the run's timeout).
    pub fn wait(mut self) -> VmRun {
        let mut child = self.child.take().expect("the VM runs");
        let end = self.started + self.timeout;
        let mut timed_out = false;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() >= end => {
                    let _ = child.kill();
                    let _ = child.wait();
                    timed_out = true;
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => panic!("waiting for qemu: {e}"),
            }
        }
        let elapsed = self.started.elapsed();
        let output = self.output_so_far();
        let console = self.console_so_far();
        let qemu_stderr = read_lossy(&self.dir.join("qemu.stderr"));
        let (script, exit) = match output.rfind(EXIT_MARKER) {
            Some(i) => {
                let rest = &output[i + EXIT_MARKER.len()..];
                let code = rest
                    .split("@@")
                    .next()
                    .and_then(|s| s.trim().parse::<i32>().ok());
                (output[..i].to_string(), code)
            }
            None => (output.clone(), None),
        };
        VmRun {
            output: script,
            exit,
            console,
            qemu_stderr,
            timed_out,
            elapsed,
            accel: self.accel,
        }
    }
}

impl Drop for RunningVm {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            if std::thread::panicking() {
                eprintln!(
                    "---- guest console ({}) ----\n{}\n---- guest output ----\n{}",
                    self.console.display(),
                    self.console_so_far(),
                    self.output_so_far()
                );
            }
        }
    }
}

/// What a VM run left: the script's output and exit status, the kernel console.
#[derive(Debug)]
pub struct VmRun {
    /// The script's stdout+stderr (before the end marker).
    pub output: String,
    /// The script's exit status; None if the guest never reached the end marker.
    pub exit: Option<i32>,
    pub console: String,
    pub qemu_stderr: String,
    pub timed_out: bool,
    /// From starting qemu to its exit.
    pub elapsed: Duration,
    pub accel: Accel,
}

impl VmRun {
    /// The script's output; panics with the console, the output and qemu's stderr unless the
    /// script exited 0.
    pub fn assert_ok(&self) -> &str {
        if self.exit != Some(0) {
            panic!(
                "the guest script {} (after {:?}, {:?}{})\n---- guest console ----\n{}\n\
                 ---- guest output ----\n{}\n---- qemu stderr ----\n{}",
                match self.exit {
                    Some(c) => format!("exited with {c}"),
                    None => "did not finish".into(),
                },
                self.elapsed,
                self.accel,
                if self.timed_out { ", timed out" } else { "" },
                self.console,
                self.output,
                self.qemu_stderr
            );
        }
        &self.output
    }
}

fn read_lossy(p: &Path) -> String {
    String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).replace('\r', "")
}

/// The kernel the rig boots.
#[derive(Clone, Debug)]
pub struct Kernel {
    pub image: PathBuf,
    pub version: String,
}

/// The newest `/boot/vmlinuz-*` that has its modules in `/lib/modules`.
pub fn kernel() -> Kernel {
    static K: OnceLock<Kernel> = OnceLock::new();
    K.get_or_init(|| {
        let mut found: Vec<Kernel> = fs::read_dir("/boot")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let version = name.strip_prefix("vmlinuz-")?.to_string();
                Path::new("/lib/modules")
                    .join(&version)
                    .exists()
                    .then(|| Kernel {
                        image: e.path(),
                        version,
                    })
            })
            .collect();
        found.sort_by(|a, b| a.version.cmp(&b.version));
        found.pop().unwrap_or_else(|| {
            panic!(
                "no /boot/vmlinuz-* with modules in /lib/modules: install linux-image-amd64 \
                 (the VM tests need: apt-get install {PACKAGES})"
            )
        })
    })
    .clone()
}

/// `modprobe --show-depends`: the module files (and arguments) to insmod, in order.
fn module_chain(version: &str, module: &str) -> Vec<(String, String)> {
    let out = run_timeout(
        Command::new("modprobe").args(["-S", version, "--show-depends", module]),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("modprobe (kmod): {e}"));
    assert!(
        out.status.success(),
        "modprobe -S {version} --show-depends {module}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("insmod ")?;
            let mut parts = rest.trim().splitn(2, ' ');
            let ko = parts.next()?.to_string();
            Some((ko, parts.next().unwrap_or("").trim().to_string()))
        })
        .collect()
}

/// The shared part of every initramfs, built once per test process.
fn base_image() -> &'static [u8] {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    BASE.get_or_init(|| {
        let k = kernel();
        let mut c = Cpio::new();
        for d in [
            "/proc", "/sys", "/dev", "/run", "/tmp", "/mnt", "/root", "/etc",
        ] {
            c.dir(d);
        }
        // Debian's merged /usr: the interpreter paths (/bin/busybox, /lib64/ld-linux...).
        for (link, target) in [
            ("/bin", "usr/bin"),
            ("/sbin", "usr/sbin"),
            ("/lib", "usr/lib"),
        ] {
            c.dir(&format!("/usr/{}", &target[4..]));
            c.symlink(link, target);
        }
        c.char_dev("/dev/console", 5, 1);
        c.char_dev("/dev/null", 1, 3);
        c.file("/init", 0o755, include_bytes!("init.sh"));
        c.file("/etc/lvm/lvm.conf", 0o644, include_bytes!("lvm.conf"));
        c.file("/etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n");
        c.file("/etc/group", 0o644, b"root:x:0:\n");
        let busybox = Path::new("/usr/bin/busybox");
        assert!(
            busybox.exists(),
            "no /usr/bin/busybox: install busybox-static (apt-get install {PACKAGES})"
        );
        c.host_path(busybox).expect("copy busybox");
        for tool in TOOLS {
            let p = Path::new(tool);
            assert!(
                p.exists(),
                "{tool} is missing on the host: the VM tests need apt-get install {PACKAGES}"
            );
            c.host_path(p).expect("copy a tool");
            for lib in shared_libs(p) {
                c.host_path(&lib).expect("copy a library");
            }
        }
        for cmd in LVM_COMMANDS {
            c.symlink(&format!("/usr/sbin/{cmd}"), "lvm");
        }
        for m in STANDARD_MODULES {
            for (ko, _) in module_chain(&k.version, m) {
                c.host_path(Path::new(&ko)).expect("copy a module");
            }
        }
        c.finish()
    })
}

/// The libraries `ldd` lists for `bin` (and its loader).
fn shared_libs(bin: &Path) -> Vec<PathBuf> {
    let out = run_timeout(Command::new("ldd").arg(bin), Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("ldd: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// KVM if it really runs a guest here, else TCG (`QUIESCE_VM_ACCEL` overrides). The probe
/// boots the kernel under KVM with no initramfs and waits up to 10 s for its banner.
pub fn accel() -> Accel {
    static A: OnceLock<Accel> = OnceLock::new();
    *A.get_or_init(|| {
        match std::env::var("QUIESCE_VM_ACCEL").as_deref() {
            Ok("kvm") => return Accel::Kvm,
            Ok("tcg") => return Accel::Tcg,
            _ => {}
        }
        let a = probe_kvm();
        eprintln!("quiesce vm rig: accelerator {a:?}");
        a
    })
}

fn probe_kvm() -> Accel {
    if fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return Accel::Tcg;
    }
    let Ok(scratch) = std::panic::catch_unwind(Scratch::new) else {
        return Accel::Tcg;
    };
    let log = scratch.path("kvm-probe.log");
    let child = Command::new("qemu-system-x86_64")
        .args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
        ])
        .args([
            "-machine", "q35", "-accel", "kvm", "-cpu", "host", "-m", "256",
        ])
        .arg("-kernel")
        .arg(kernel().image)
        .args(["-append", "console=ttyS0 earlyprintk=ttyS0 panic=-1"])
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return Accel::Tcg;
    };
    let end = Instant::now() + Duration::from_secs(10);
    let mut ok = false;
    while Instant::now() < end {
        if read_lossy(&log).contains("Linux version") {
            ok = true;
            break;
        }
        if !matches!(child.try_wait(), Ok(None)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    if ok {
        Accel::Kvm
    } else {
        Accel::Tcg
    }
}

/// The static `quiesce` CLI, built once per test process: for the musl target, or against static
/// glibc where that target is not installed (tests/static_cli.rs checks it).
pub fn static_quiesce() -> PathBuf {
    static Q: OnceLock<PathBuf> = OnceLock::new();
    Q.get_or_init(|| {
        const MUSL: &str = "x86_64-unknown-linux-musl";
        let sysroot = Command::new("rustc")
            .args(["--print", "sysroot"])
            .output()
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .unwrap_or_default();
        let musl = sysroot.join("lib/rustlib").join(MUSL).exists();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--release",
            "-p",
            "quiesce-cli",
            "--bin",
            "quiesce",
        ])
        .args([
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(repo_root().join("Cargo.toml"));
        if musl {
            cmd.args(["--target", MUSL]);
        } else {
            cmd.env("RUSTFLAGS", "-C target-feature=+crt-static")
                .args(["--target", "x86_64-unknown-linux-gnu"])
                .arg("--target-dir")
                .arg(repo_root().join("target/static-glibc"));
        }
        let out = run_timeout(&mut cmd, Duration::from_secs(1200)).expect("cargo build");
        assert!(
            out.status.success(),
            "the static build of quiesce failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| Json::parse(l).ok())
            .filter(|m| m["reason"].as_str() == Some("compiler-artifact"))
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no executable")
    })
    .clone()
}
