//! JSON lines in a file, rotated by size (`PATH` → `PATH.1` → … → `PATH.N`, the oldest dropped). A batch
//! is on disk (fsync) before the delivery succeeds. A batch cut short (a full disk, a `kill -9` in the
//! middle of a write) leaves no partial line behind: it is cut off before the batch is written again.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::SinkError;
use crate::shipper::config::FileConfig;
use crate::shipper::record::Record;

pub struct FileSink {
    state: Arc<Mutex<FileState>>,
}

struct FileState {
    path: PathBuf,
    max_size: u64,
    max_files: u32,
    file: File,
    size: u64,
}

impl FileSink {
    pub fn open(config: &FileConfig) -> std::io::Result<Self> {
        if let Some(parent) = config.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&config.path)?;
        let size = trim_torn_tail(&mut file)?;
        let state = FileState {
            path: config.path.clone(),
            max_size: config.max_size_mib.saturating_mul(1024 * 1024),
            max_files: config.max_files,
            file,
            size,
        };
        Ok(FileSink {
            state: Arc::new(Mutex::new(state)),
        })
    }

    pub async fn deliver(&mut self, records: &[Record]) -> Result<(), SinkError> {
        let mut lines = Vec::with_capacity(records.len() * 512);
        for record in records {
            serde_json::to_writer(&mut lines, record).expect("a record serializes");
            lines.push(b'\n');
        }
        let state = self.state.clone();
        let path = self
            .state
            .lock()
            .expect("not poisoned")
            .path
            .display()
            .to_string();
        match tokio::task::spawn_blocking(move || state.lock().expect("not poisoned").write(&lines)).await {
            Ok(result) => result,
            Err(e) => Err(SinkError::Io {
                path,
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }
}

impl FileState {
    fn write(&mut self, lines: &[u8]) -> Result<(), SinkError> {
        let path = self.path.display().to_string();
        let io = |source| SinkError::Io {
            path: path.clone(),
            source,
        };
        if self.size > 0 && self.size + lines.len() as u64 > self.max_size {
            self.rotate().map_err(io)?;
        }
        if let Err(e) = self.file.write_all(lines).and_then(|()| self.file.sync_data()) {
            // Whatever part of the batch got in goes again with the retry: leave no fragment.
            let _ = self.file.set_len(self.size);
            return Err(io(e));
        }
        self.size += lines.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let numbered = |n: u32| {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        if self.max_files == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            for n in (1..self.max_files).rev() {
                if numbered(n).exists() {
                    std::fs::rename(numbered(n), numbered(n + 1))?;
                }
            }
            std::fs::rename(&self.path, numbered(1))?;
        }
        self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// Cuts `file` after its last newline (a line without one is a write cut short); returns its length.
fn trim_torn_tail(file: &mut File) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let buffer = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(buffer)?;
        if let Some(newline) = buffer.iter().rposition(|&b| b == b'\n') {
            end = start + newline as u64 + 1;
            break;
        }
        end = start;
    }
    if end != len {
        file.set_len(end)?;
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Event;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn record(i: usize) -> Record {
        Record::new(Event {
            metadata: ObjectMeta {
                uid: Some(format!("uid-{i}")),
                ..ObjectMeta::default()
            },
            message: Some("x".repeat(400)),
            ..Event::default()
        })
    }

    #[tokio::test]
    async fn a_line_cut_short_is_removed_before_writing_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, "{\"deliveryId\":\"a-1\"}\n{\"deliveryId\":\"b-1\",\"ev").unwrap();
        let config = FileConfig {
            path: path.clone(),
            max_size_mib: 1,
            max_files: 1,
        };
        let mut sink = FileSink::open(&config).unwrap();
        sink.deliver(&[record(7)]).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let ids: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["deliveryId"].to_string())
            .collect();
        assert_eq!(ids, ["\"a-1\"", "\"uid-7-1\""]);
        // A file holding only a fragment is emptied.
        std::fs::write(&path, "{\"delivery").unwrap();
        assert_eq!(
            trim_torn_tail(&mut OpenOptions::new().read(true).append(true).open(&path).unwrap()).unwrap(),
            0
        );
    }

    #[tokio::test]
    async fn writes_json_lines_and_rotates_by_size_keeping_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events/events.jsonl");
        let config = FileConfig {
            path: path.clone(),
            max_size_mib: 1,
            max_files: 2,
        };
        let mut sink = FileSink::open(&config).unwrap();
        // About 500 bytes a line: 1 MiB holds about 2000; write 7000 in batches of 100.
        for batch in 0..70 {
            let records: Vec<Record> = (0..100).map(|i| record(batch * 100 + i)).collect();
            sink.deliver(&records).await.unwrap();
        }
        let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
        let current = read(&path);
        let last: Record = serde_json::from_str(current.lines().last().unwrap()).unwrap();
        assert_eq!(last.delivery_id, "uid-6999-1");
        assert!(std::fs::metadata(&path).unwrap().len() <= 1024 * 1024);
        let rotated = [path.with_extension("jsonl.1"), path.with_extension("jsonl.2")];
        assert!(rotated.iter().all(|p| p.exists()));
        assert!(
            !path.with_extension("jsonl.3").exists(),
            "only max_files rotated files are kept"
        );
        // The files hold consecutive records, newest in the current file.
        let first_current: Record = serde_json::from_str(current.lines().next().unwrap()).unwrap();
        let last_rotated: Record = serde_json::from_str(read(&rotated[0]).lines().last().unwrap()).unwrap();
        let number = |r: &Record| r.delivery_id.split('-').nth(1).unwrap().parse::<usize>().unwrap();
        assert_eq!(number(&last_rotated) + 1, number(&first_current));
    }
}
