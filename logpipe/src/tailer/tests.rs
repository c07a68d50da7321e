//! The tailer against the scenarios of `spec/logs.md` §5 that a single process can play: lines are
//! numbered, and a verifier counts lost, repeated and out-of-order ones.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::mpsc::{Receiver, sync_channel};

use super::*;
use crate::multiline::MultilineRule;

fn cri(n: usize) -> String {
    format!("2026-01-01T00:00:00.{n:09}Z stdout F line {n}\n")
}

struct Rig {
    _dir: tempfile::TempDir,
    root: PathBuf,
    file: PathBuf,
    tailer: Tailer,
    rx: Receiver<Batch>,
    seen: Vec<usize>,
    positions: BTreeMap<FileKey, Position>,
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pods");
        let file = root.join("ns_pod_uid/c/0.log");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "").unwrap();
        let (tailer, rx) = tailer(&root, BTreeMap::new());
        Rig {
            _dir: dir,
            root,
            file,
            tailer,
            rx,
            seen: Vec::new(),
            positions: BTreeMap::new(),
        }
    }

    fn append(&self, range: std::ops::Range<usize>) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.file)
            .unwrap();
        for n in range {
            f.write_all(cri(n).as_bytes()).unwrap();
        }
    }

    /// Passes until nothing is left to read, collecting line numbers and positions.
    fn drain(&mut self) {
        for _ in 0..100 {
            let more = self.tailer.pass().unwrap();
            while let Ok(batch) = self.rx.try_recv() {
                for line in batch.lines {
                    self.seen
                        .push(line.message.trim_start_matches("line ").parse().unwrap());
                }
                self.positions.extend(batch.positions);
                for key in batch.released {
                    self.positions.remove(&key);
                }
            }
            if !more {
                return;
            }
        }
    }

    /// Lost and repeated line numbers of 0..n.
    fn verify(&self, n: usize) -> (Vec<usize>, Vec<usize>) {
        let mut counts = vec![0; n];
        for &line in &self.seen {
            counts[line] += 1;
        }
        let lost = (0..n).filter(|i| counts[*i] == 0).collect();
        let repeated = (0..n).filter(|i| counts[*i] > 1).collect();
        (lost, repeated)
    }
}

fn tailer(root: &Path, saved: BTreeMap<FileKey, Position>) -> (Tailer, Receiver<Batch>) {
    let (tx, rx) = sync_channel(64);
    let config = TailerConfig {
        root: root.to_path_buf(),
        hosts: Vec::new(),
        labels: PodLabels::default(),
        node: "n".into(),
        poll: Duration::from_millis(10),
        max_line: 1024,
        max_open: MAX_OPEN_FILES,
        containers: Vec::new(),
    };
    (Tailer::new(config, saved, tx, Telemetry::default()), rx)
}

#[test]
fn rename_rotation_is_drained_then_followed() {
    let mut rig = Rig::new();
    rig.append(0..100);
    rig.drain();
    rig.append(100..150);
    std::fs::rename(&rig.file, rig.file.with_extension("log.20260101-000000")).unwrap();
    rig.append(150..200);
    rig.drain();
    rig.drain();
    assert_eq!(rig.verify(200), (vec![], vec![]));
    let mut sorted = rig.seen.clone();
    sorted.sort();
    assert_eq!(sorted, rig.seen, "in order");
    assert_eq!(rig.positions.len(), 2);
    let rotated = rig.positions.values().filter(|p| p.done).count();
    assert_eq!(
        rotated, 1,
        "the rotated file is read to its end: {:?}",
        rig.positions
    );
    // Once it is gone, its position goes too.
    std::fs::remove_file(rig.file.with_extension("log.20260101-000000")).unwrap();
    rig.tailer.sweep_done();
    rig.drain();
    assert_eq!(rig.positions.len(), 1, "{:?}", rig.positions);
}

impl Rig {
    /// A new tailer from the positions so far, as after a restart.
    fn restart(&mut self) {
        let (tailer, rx) = tailer(&self.root, self.positions.clone());
        self.tailer = tailer.resumed(true);
        self.rx = rx;
    }

    fn rotate(&self, suffix: &str) {
        std::fs::rename(&self.file, self.file.with_extension(format!("log.{suffix}"))).unwrap();
    }
}

#[test]
fn a_restart_after_two_rotations_while_down_reads_every_line_once() {
    let mut rig = Rig::new();
    rig.append(0..10);
    rig.drain();
    // Down: more lines, a rotation, lines in a new file, another rotation, more lines.
    rig.append(10..20);
    rig.rotate("20260101-000001");
    rig.append(20..30);
    rig.rotate("20260101-000002");
    rig.append(30..40);
    rig.restart();
    rig.drain();
    rig.drain();
    assert_eq!(rig.verify(40), (vec![], vec![]));
    // Again, with nothing new: the rotated files are known to be read.
    rig.restart();
    rig.drain();
    rig.drain();
    assert_eq!(rig.verify(40), (vec![], vec![]));
    assert_eq!(rig.positions.values().filter(|p| p.done).count(), 2);
}

#[test]
fn a_file_rotated_and_deleted_while_down_is_counted_lost() {
    let mut rig = Rig::new();
    rig.append(0..10);
    rig.drain();
    rig.append(10..20);
    rig.rotate("20260101-000001");
    rig.append(20..30);
    std::fs::remove_file(rig.file.with_extension("log.20260101-000001")).unwrap();
    rig.restart();
    rig.drain();
    assert_eq!(rig.verify(30), ((10..20).collect(), vec![]));
    let gone = rig
        .tailer
        .telemetry
        .anomalies
        .get_or_create(&crate::telemetry::ReasonLabel { reason: "file_gone" })
        .get();
    assert_eq!(gone, 1);
    assert_eq!(rig.positions.len(), 1, "the gone file's position is dropped");
}

#[test]
fn a_file_rewritten_past_the_read_position_between_looks_is_read_from_its_start() {
    let mut rig = Rig::new();
    rig.append(0..10);
    rig.drain();
    // copytruncate, and the writer goes on past where reading was before the next look.
    std::fs::write(&rig.file, "").unwrap();
    rig.append(10..40);
    rig.drain();
    assert_eq!(rig.verify(40), (vec![], vec![]));
}

#[test]
fn open_files_stay_under_the_bound_and_quiet_ones_open_again_when_they_grow() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pods");
    let (tx, rx) = sync_channel(64);
    let config = TailerConfig {
        root: root.clone(),
        hosts: Vec::new(),
        labels: PodLabels::default(),
        node: "n".into(),
        poll: Duration::from_millis(10),
        max_line: 1024,
        max_open: 8,
        containers: Vec::new(),
    };
    let mut tailer = Tailer::new(config, BTreeMap::new(), tx, Telemetry::default());
    let files: Vec<PathBuf> = (0..40)
        .map(|i| root.join(format!("ns_pod{i}_uid/c/0.log")))
        .collect();
    let write = |range: std::ops::Range<usize>| {
        for (i, file) in files.iter().enumerate() {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(file)
                .unwrap();
            for n in range.clone() {
                f.write_all(cri(i * 1000 + n).as_bytes()).unwrap();
            }
        }
    };
    let mut seen = Vec::new();
    let mut drain = |tailer: &mut Tailer| {
        for _ in 0..50 {
            tailer.pass().unwrap();
            assert!(tailer.telemetry.files_open.get() <= 8);
            while let Ok(batch) = rx.try_recv() {
                seen.extend(batch.lines.into_iter().map(|l| l.message));
            }
        }
    };
    write(0..5);
    drain(&mut tailer);
    write(5..10);
    // One of the closed files is renamed (rotated) with lines in it nobody read yet.
    let quiet = files[0].clone();
    std::fs::rename(&quiet, quiet.with_extension("log.20260101-000000")).unwrap();
    drain(&mut tailer);
    let mut expected: Vec<String> = (0..40)
        .flat_map(|i| (0..10).map(move |n| format!("line {}", i * 1000 + n)))
        .collect();
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected);
}

#[test]
fn copytruncate_and_rewrite_read_the_new_content() {
    let mut rig = Rig::new();
    rig.append(0..50);
    rig.drain();
    std::fs::write(&rig.file, "").unwrap();
    rig.append(50..60);
    rig.drain();
    assert_eq!(rig.verify(60), (vec![], vec![]));
}

#[test]
fn a_file_deleted_while_open_is_drained_and_released() {
    let mut rig = Rig::new();
    rig.append(0..10);
    rig.drain();
    let mut f = std::fs::OpenOptions::new().append(true).open(&rig.file).unwrap();
    std::fs::remove_file(&rig.file).unwrap();
    f.write_all(cri(10).as_bytes()).unwrap();
    rig.drain();
    rig.drain();
    assert_eq!(rig.verify(11), (vec![], vec![]));
    assert!(rig.positions.is_empty(), "{:?}", rig.positions);
}

#[test]
fn a_restart_resumes_at_the_committed_position_without_repeats() {
    let mut rig = Rig::new();
    rig.append(0..30);
    rig.drain();
    // A half-written record and a partial line are not passed over.
    let mut f = std::fs::OpenOptions::new().append(true).open(&rig.file).unwrap();
    f.write_all(b"2026-01-01T00:00:01Z stdout P line ").unwrap();
    f.write_all(b"3").unwrap();
    drop(f);
    rig.drain();
    let saved = rig.positions.clone();
    // "Restart": a new tailer from the saved positions.
    let (tailer, rx) = tailer(&rig.root, saved);
    rig.tailer = tailer;
    rig.rx = rx;
    let mut f = std::fs::OpenOptions::new().append(true).open(&rig.file).unwrap();
    f.write_all(b"0\n2026-01-01T00:00:02Z stdout F 1\n").unwrap();
    rig.append(32..40);
    rig.drain();
    // The P record ("line 30", its newline written after the restart) and the F record ("1") join.
    let joined: Vec<usize> = rig.seen.iter().copied().filter(|n| *n >= 30).collect();
    assert_eq!(joined, [301, 32, 33, 34, 35, 36, 37, 38, 39]);
    assert_eq!(
        rig.seen.iter().filter(|n| **n < 30).count(),
        30,
        "nothing before the restart repeated"
    );
}

#[test]
fn a_reused_inode_with_other_content_starts_over() {
    let mut rig = Rig::new();
    rig.append(0..20);
    rig.drain();
    let saved = rig.positions.clone();
    // Rewritten while "down": same path, maybe same inode, other first bytes.
    std::fs::write(&rig.file, "").unwrap();
    let mut f = std::fs::OpenOptions::new().write(true).open(&rig.file).unwrap();
    f.write_all(b"2026-01-01T00:00:09Z stdout F line 7\n").unwrap();
    drop(f);
    let (tailer, rx) = tailer(&rig.root, saved);
    rig.tailer = tailer;
    rig.rx = rx;
    rig.seen.clear();
    rig.drain();
    assert_eq!(rig.seen, [7]);
}

#[test]
fn host_files_by_glob_with_excludes_and_a_start_position() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("var/log");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("app.log"), "old line\n").unwrap();
    std::fs::write(logs.join("debug.log"), "skipped\n").unwrap();
    let (tx, rx) = sync_channel(64);
    let config = TailerConfig {
        root: dir.path().join("pods"),
        labels: PodLabels::default(),
        hosts: vec![HostSource {
            name: "system".into(),
            include: vec![glob::Pattern::new(&format!("{}/*.log", logs.display())).unwrap()],
            exclude: vec![glob::Pattern::new("**/debug.log").unwrap()],
            start_at_end: true,
            multiline: None,
        }],
        node: "n".into(),
        poll: Duration::from_millis(10),
        max_line: 1024,
        max_open: MAX_OPEN_FILES,
        containers: Vec::new(),
    };
    let mut tailer = Tailer::new(config, BTreeMap::new(), tx, Telemetry::default());
    tailer.pass().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(logs.join("app.log"))
        .unwrap();
    f.write_all(b"level=error msg=\"new line\" time=2026-01-01T00:00:00Z\n")
        .unwrap();
    std::fs::write(logs.join("late.log"), "from a file that came later\n").unwrap();
    std::fs::write(logs.join("debug.log"), "still skipped\n").unwrap();
    tailer.pass().unwrap();
    let mut lines = Vec::new();
    while let Ok(batch) = rx.try_recv() {
        lines.extend(batch.lines);
    }
    lines.sort_by(|a, b| a.message.cmp(&b.message));
    let messages: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(messages, ["from a file that came later", "new line"]);
    let new = &lines[1];
    assert_eq!(
        (new.level.as_str(), new.timestamp.to_string().as_str()),
        ("error", "2026-01-01T00:00:00Z")
    );
    assert_eq!(new.attributes["logSource"], "system");
}

fn host_tailer(dir: &Path, max_line: usize) -> (Tailer, Receiver<Batch>) {
    let (tx, rx) = sync_channel(64);
    let config = TailerConfig {
        root: dir.join("pods"),
        labels: PodLabels::default(),
        hosts: vec![HostSource {
            name: "h".into(),
            include: vec![glob::Pattern::new(&format!("{}/*.log", dir.display())).unwrap()],
            exclude: vec![],
            start_at_end: false,
            multiline: None,
        }],
        node: "n".into(),
        poll: Duration::from_millis(10),
        max_line,
        max_open: MAX_OPEN_FILES,
        containers: Vec::new(),
    };
    (Tailer::new(config, BTreeMap::new(), tx, Telemetry::default()), rx)
}

fn drain_lines(tailer: &mut Tailer, rx: &Receiver<Batch>) -> (Vec<LogLine>, BTreeMap<FileKey, Position>) {
    let mut lines = Vec::new();
    let mut positions = BTreeMap::new();
    for _ in 0..1000 {
        let more = tailer.pass().unwrap();
        while let Ok(batch) = rx.try_recv() {
            lines.extend(batch.lines);
            positions.extend(batch.positions);
        }
        if !more {
            break;
        }
    }
    (lines, positions)
}

#[test]
fn a_10_mib_line_is_cut_once_and_the_next_line_survives_a_restart_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.log");
    let mut f = std::fs::File::create(&file).unwrap();
    f.write_all(b"before\n").unwrap();
    f.write_all(&vec![b'x'; 10 * 1024 * 1024]).unwrap();
    f.write_all(b"\n").unwrap();
    drop(f);
    let (mut tailer, rx) = host_tailer(dir.path(), 4096);
    // Stop in the middle of the long line: one pass reads one chunk of it.
    tailer.pass().unwrap();
    let mut lines: Vec<LogLine> = Vec::new();
    let mut positions = BTreeMap::new();
    while let Ok(batch) = rx.try_recv() {
        lines.extend(batch.lines);
        positions.extend(batch.positions);
    }
    // A restart from there, and the file goes on.
    let (tx, rx) = sync_channel(64);
    let config = tailer.config.clone();
    let mut tailer = Tailer::new(config, positions, tx, Telemetry::default());
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(b"after\n")
        .unwrap();
    let (more, _) = drain_lines(&mut tailer, &rx);
    lines.extend(more);
    let summary: Vec<(usize, bool)> = lines
        .iter()
        .map(|l| (l.message.len(), l.attributes.contains_key("truncated")))
        .collect();
    assert_eq!(
        summary,
        [(6, false), (4096, true), (5, false)],
        "before, the cut line, after"
    );
}

#[test]
fn nul_bytes_and_invalid_utf8_are_kept_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bin.log"), b"nul\0byte\nbad \xff\xfe utf8\n").unwrap();
    let (mut tailer, rx) = host_tailer(dir.path(), 4096);
    let (lines, _) = drain_lines(&mut tailer, &rx);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].message, "nul\0byte");
    assert!(!lines[0].attributes.contains_key("invalidUtf8"));
    assert_eq!(lines[1].message, "bad \u{fffd}\u{fffd} utf8");
    assert_eq!(lines[1].attributes["invalidUtf8"], true);
}

#[test]
fn a_thousand_files_at_once_give_every_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pods");
    for pod in 0..1000 {
        let file = root.join(format!("ns_pod{pod}_uid{pod}/c/0.log"));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let text: String = (0..10).map(|n| cri(pod * 10 + n)).collect();
        std::fs::write(file, text).unwrap();
    }
    let (mut tailer, rx) = tailer(&root, BTreeMap::new());
    let (lines, positions) = drain_lines(&mut tailer, &rx);
    assert_eq!(positions.len(), 1000);
    let mut numbers: Vec<usize> = lines
        .iter()
        .map(|l| l.message.trim_start_matches("line ").parse().unwrap())
        .collect();
    numbers.sort();
    assert_eq!(numbers, (0..10_000).collect::<Vec<_>>());
    assert!(
        lines
            .iter()
            .all(|l| l.pod.starts_with("pod") && l.namespace == "ns")
    );
}

#[test]
fn a_partial_line_left_in_a_rotated_file_is_not_lost() {
    let mut rig = Rig::new();
    rig.append(0..3);
    let mut f = std::fs::OpenOptions::new().append(true).open(&rig.file).unwrap();
    f.write_all(b"2026-01-01T00:00:01Z stdout P line 3\n").unwrap();
    drop(f);
    rig.drain();
    std::fs::rename(&rig.file, rig.file.with_extension("log.20260101-000001")).unwrap();
    rig.append(4..6);
    rig.drain();
    rig.drain();
    assert_eq!(rig.verify(6), (vec![], vec![]));
}

#[test]
fn a_truncation_inside_a_cut_line_keeps_the_new_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cut.log");
    std::fs::write(&file, vec![b'x'; 2 * 1024 * 1024]).unwrap();
    let (mut tailer, rx) = host_tailer(dir.path(), 1024);
    let (lines, _) = drain_lines(&mut tailer, &rx);
    assert_eq!(lines.len(), 1, "the long line, cut once");
    std::fs::write(&file, "fresh start\n").unwrap();
    let (lines, _) = drain_lines(&mut tailer, &rx);
    let messages: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(messages, ["fresh start"]);
}

fn multiline_rule(start: &str) -> Option<Arc<MultilineRule>> {
    Some(Arc::new(MultilineRule {
        start: regex::bytes::Regex::new(start).unwrap(),
        timeout: Duration::from_millis(100),
        max_lines: 50,
    }))
}

#[test]
fn stack_traces_join_their_first_line_and_a_restart_inside_one_joins_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mut tailer, rx) = host_tailer(dir.path(), 1024);
    tailer.config.hosts[0].multiline = multiline_rule(r"^\d");
    let file = dir.path().join("app.log");
    let mut f = std::fs::File::create(&file).unwrap();
    f.write_all(b"1 started\n2 failed: boom\n  at a.b(C.java:1)\n  at d.e(F.java:2)\n")
        .unwrap();
    let (lines, positions) = drain_lines(&mut tailer, &rx);
    // "2 failed" may still get continuation lines: it waits.
    assert_eq!(
        lines.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(),
        ["1 started"]
    );
    let saved = positions.into_values().next().unwrap();
    assert_eq!(
        saved.offset, 10,
        "the position stays at the open record's first line"
    );

    // A restart from there joins the whole record again, once.
    let (tx, rx2) = sync_channel(64);
    let config = tailer.config.clone();
    let key = key_of(&std::fs::metadata(&file).unwrap());
    let mut restarted =
        Tailer::new(config, BTreeMap::from([(key, saved)]), tx, Telemetry::default()).resumed(true);
    f.write_all(b"  ... 3 more\n3 recovered\n").unwrap();
    let (lines, _) = drain_lines(&mut restarted, &rx2);
    let messages: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(
        messages,
        ["2 failed: boom\n  at a.b(C.java:1)\n  at d.e(F.java:2)\n  ... 3 more"]
    );
    assert_eq!(lines[0].attributes["lines"], 4);
    // The last record goes out once nothing came for the timeout.
    std::thread::sleep(Duration::from_millis(150));
    let (lines, positions) = drain_lines(&mut restarted, &rx2);
    assert_eq!(
        lines.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(),
        ["3 recovered"]
    );
    assert_eq!(
        positions.into_values().next().unwrap().offset,
        std::fs::metadata(&file).unwrap().len()
    );
}

#[test]
fn container_rules_join_by_namespace_and_container_and_keep_streams_apart() {
    let mut rig = Rig::new();
    rig.tailer.config.containers = vec![ContainerMultiline {
        namespace: Some(glob::Pattern::new("ns").unwrap()),
        pod: None,
        container: Some(glob::Pattern::new("c").unwrap()),
        rule: multiline_rule(r"^[^ ]").unwrap(),
    }];
    rig.tailer.files.clear();
    let record = |stream: &str, text: &str| format!("2026-01-01T00:00:00.000000000Z {stream} F {text}\n");
    let mut f = std::fs::OpenOptions::new().append(true).open(&rig.file).unwrap();
    for (stream, text) in [
        ("stderr", "panic: boom"),
        ("stderr", "  main.go:12"),
        ("stdout", "  indented stdout"),
        ("stderr", "  main.go:40"),
        ("stdout", "done"),
    ] {
        f.write_all(record(stream, text).as_bytes()).unwrap();
    }
    let (tx, rx) = sync_channel(64);
    let config = rig.tailer.config.clone();
    let mut tailer = Tailer::new(config, BTreeMap::new(), tx, Telemetry::default());
    let (mut lines, _) = drain_lines(&mut tailer, &rx);
    std::thread::sleep(Duration::from_millis(150));
    lines.extend(drain_lines(&mut tailer, &rx).0);
    // A line of the other stream ends the record being joined.
    let mut all: Vec<(String, String)> = lines.into_iter().map(|l| (l.stream, l.message)).collect();
    all.sort();
    assert_eq!(
        all,
        [
            ("stderr".into(), "  main.go:40".into()),
            ("stderr".into(), "panic: boom\n  main.go:12".into()),
            ("stdout".into(), "  indented stdout".into()),
            ("stdout".into(), "done".into()),
        ]
    );
}

#[test]
fn a_stalled_index_makes_the_tailer_wait_and_lose_nothing() {
    let mut rig = Rig::new();
    rig.append(0..200_000);
    // A queue of one batch that nobody takes for a while: the tailer blocks in `send`.
    let (tx, rx) = sync_channel(1);
    let tailer = Tailer::new(
        rig.tailer.config.clone(),
        BTreeMap::new(),
        tx,
        Telemetry::default(),
    );
    let telemetry = tailer.telemetry.clone();
    let shutdown = CancellationToken::new();
    let running = std::thread::spawn({
        let shutdown = shutdown.clone();
        move || tailer.run(shutdown)
    });
    std::thread::sleep(Duration::from_millis(500));
    let read_while_stalled = telemetry.lines_read.get();
    // A batch holds at most a chunk read (1 MiB, about 20,000 of these lines): one queued, one waiting.
    assert!(read_while_stalled <= 50_000, "{read_while_stalled}");
    for _ in 0..1000 {
        while let Ok(batch) = rx.try_recv() {
            rig.seen.extend(
                batch
                    .lines
                    .iter()
                    .map(|l| l.message.trim_start_matches("line ").parse::<usize>().unwrap()),
            );
        }
        if rig.seen.len() >= 200_000 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    shutdown.cancel();
    drop(rx);
    running.join().unwrap();
    assert_eq!(rig.verify(200_000), (vec![], vec![]));
}

#[test]
fn a_last_line_without_its_newline_waits_without_spinning_and_goes_out_when_its_file_is_left() {
    let mut rig = Rig::new();
    rig.append(0..3);
    let mut f = std::fs::OpenOptions::new().append(true).open(&rig.file).unwrap();
    f.write_all(b"2026-01-01T00:00:00.000000003Z stdout F line 3")
        .unwrap();
    // Nothing more to read now: the pass does not ask to be run again at once.
    assert!(!rig.tailer.pass().unwrap());
    rig.drain();
    assert_eq!(rig.seen, [0, 1, 2]);
    // Renamed away and left: its last line goes out, flagged, and the file is let go.
    rig.rotate("20260101-000000");
    rig.append(4..5);
    let mut partial = Vec::new();
    for _ in 0..5 {
        rig.tailer.pass().unwrap();
        while let Ok(batch) = rig.rx.try_recv() {
            for line in batch.lines {
                if line.attributes.contains_key("partial") {
                    partial.push(line.message.clone());
                }
                rig.seen
                    .push(line.message.trim_start_matches("line ").parse().unwrap());
            }
        }
    }
    assert_eq!(partial, ["line 3"]);
    assert_eq!(rig.verify(5), (vec![], vec![]));
    assert_eq!(rig.tailer.files.len(), 1, "the rotated file is released");
}

#[test]
fn a_position_without_a_tail_hash_or_a_tombstone_of_an_empty_file_never_hides_lines() {
    let mut rig = Rig::new();
    rig.append(0..10);
    rig.drain();
    let key = key_of(&std::fs::metadata(&rig.file).unwrap());
    // A position saved before the tail hash existed resumes where it was.
    let mut old = rig.positions[&key].clone();
    old.tail = None;
    rig.positions.insert(key.clone(), old);
    rig.append(10..12);
    rig.restart();
    rig.drain();
    assert_eq!(rig.verify(12), (vec![], vec![]));
    // A file left empty and remembered as read: a file on its inode with lines is read.
    let empty = Position {
        path: rig.file.clone(),
        fingerprint: 0xcbf29ce484222325,
        fingerprint_len: 0,
        offset: 0,
        emitted: 0,
        skipping: false,
        tail: None,
        size: 0,
        done: true,
    };
    let (tx, rx) = sync_channel(64);
    let mut fresh = Tailer::new(
        rig.tailer.config.clone(),
        BTreeMap::from([(key, empty)]),
        tx,
        Telemetry::default(),
    )
    .resumed(true);
    let (lines, _) = drain_lines(&mut fresh, &rx);
    assert_eq!(lines.len(), 12);
}

#[test]
fn a_truncation_sends_out_the_record_being_joined_first() {
    let dir = tempfile::tempdir().unwrap();
    let (mut tailer, rx) = host_tailer(dir.path(), 1024);
    tailer.config.hosts[0].multiline = multiline_rule(r"^\d");
    let file = dir.path().join("app.log");
    std::fs::write(&file, "1 failed\n  at a\n").unwrap();
    let (lines, _) = drain_lines(&mut tailer, &rx);
    assert!(lines.is_empty());
    std::fs::write(&file, "2 new\n").unwrap();
    let (lines, _) = drain_lines(&mut tailer, &rx);
    let messages: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(messages, ["1 failed\n  at a"]);
}
