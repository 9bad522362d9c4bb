//! The memory outbox's journal: one append-only file of JSON lines, so activities acknowledged to
//! the provider outlive a crash or a restart of a relay without Redis.
//!
//! Each line is an entry's state after a change (or its removal); reading the file back, the last
//! line of each call wins. Leases are not kept: after a restart every entry is free to claim. The
//! file is rewritten with only the live entries when the relay starts and whenever dead lines
//! outnumber them, through a temporary file renamed over it, so a crash during the rewrite leaves
//! one of the two whole. A line cut short by a crash mid-append is skipped when read.
//!
//! One relay process per directory: two processes appending to one file would each read back
//! entries the other changed since.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The journal's file in its directory.
const FILE: &str = "activity-outbox.jsonl";

/// Lines beyond the live entries tolerated before a rewrite.
const SLACK: usize = 1024;

/// One line: a tenant's entry as it now is, or None when it was removed. The journal keeps
/// whatever entry type its outbox gives it, so it knows nothing of the outbox.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Record<S> {
    pub(crate) tenant: String,
    pub(crate) call_id: String,
    pub(crate) slot: Option<S>,
}

#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    /// Lines in the file, to know when a rewrite pays.
    lines: usize,
}

type Slots<S> = HashMap<String, HashMap<String, S>>;

impl Journal {
    /// Opens (or creates) the journal in `dir`, returning it with the entries it holds; the file
    /// is compacted on the way.
    pub(crate) fn open<S: DeserializeOwned + Serialize>(
        dir: &Path,
    ) -> std::io::Result<(Journal, Slots<S>)> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE);
        let mut slots: Slots<S> = HashMap::new();
        match File::open(&path) {
            Ok(file) => {
                let mut skipped = 0usize;
                for line in BufReader::new(file).lines() {
                    let line = line?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<Record<S>>(&line) {
                        Ok(record) => {
                            let tenant = slots.entry(record.tenant).or_default();
                            match record.slot {
                                Some(slot) => tenant.insert(record.call_id, slot),
                                None => tenant.remove(&record.call_id),
                            };
                        }
                        Err(_) => skipped += 1,
                    }
                }
                if skipped > 0 {
                    tracing::warn!(skipped, path = %path.display(), "skipped unreadable lines of the activity journal");
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        slots.retain(|_, t| !t.is_empty());
        let file = rewrite(&path, &slots)?;
        let lines = slots.values().map(HashMap::len).sum();
        Ok((Journal { path, file, lines }, slots))
    }

    /// Appends the records and syncs them to disk.
    pub(crate) fn append<S: Serialize>(&mut self, records: &[Record<S>]) -> std::io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for record in records {
            text.push_str(&serde_json::to_string(record).map_err(std::io::Error::other)?);
            text.push('\n');
        }
        self.file.write_all(text.as_bytes())?;
        self.file.sync_data()?;
        self.lines += records.len();
        Ok(())
    }

    /// Whether the file holds enough dead lines to be rewritten.
    pub(crate) fn wants_compaction(&self, live: usize) -> bool {
        self.lines > live.saturating_mul(2) + SLACK
    }

    /// Rewrites the file with just `slots`.
    pub(crate) fn compact<S: Serialize>(&mut self, slots: &Slots<S>) -> std::io::Result<()> {
        self.file = rewrite(&self.path, slots)?;
        self.lines = slots.values().map(HashMap::len).sum();
        Ok(())
    }
}

/// Writes `slots` to a temporary file, syncs it, renames it over `path` and opens the result for
/// appending.
fn rewrite<S: Serialize>(path: &Path, slots: &Slots<S>) -> std::io::Result<File> {
    let temp = path.with_extension("jsonl.tmp");
    {
        let mut out = std::io::BufWriter::new(File::create(&temp)?);
        for (tenant, entries) in slots {
            for (call_id, slot) in entries {
                let record = Record {
                    tenant: tenant.clone(),
                    call_id: call_id.clone(),
                    slot: Some(slot),
                };
                serde_json::to_writer(&mut out, &record).map_err(std::io::Error::other)?;
                out.write_all(b"\n")?;
            }
        }
        out.flush()?;
        out.get_ref().sync_all()?;
    }
    std::fs::rename(&temp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(dir) = File::open(dir)
    {
        // The rename itself is durable once the directory is synced.
        let _ = dir.sync_all();
    }
    OpenOptions::new().append(true).open(path)
}
