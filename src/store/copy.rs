//! `lever store copy`: moves a whole store to another (SQLite to PostgreSQL, or back), ids
//! and all, in one transaction on the target, so a copy cut short leaves the target as empty as
//! it was. A target that already holds anything is refused: two deploy logs are never merged.

use std::time::Duration;

use super::sql::{params, Db, Row, Value};
use super::{Store, StoreError};

/// Rows read from the source at a time.
const BATCH: usize = 5_000;
/// How long the whole copy may take.
const COPY_WAIT: Duration = Duration::from_secs(3_600);

/// A table, its columns, and the columns of its key (for reading it in batches, in order).
struct Table {
    name: &'static str,
    columns: &'static str,
    key: &'static [&'static str],
}

/// In the order the references between them allow: steps point at runs.
const TABLES: &[Table] = &[
    Table {
        name: "runs",
        columns: r#"id, target, phase, "user", state, started_at, finished_at, version, prev_version, note, error, steps, stopped_by"#,
        key: &["id"],
    },
    Table {
        name: "steps",
        columns:
            "run_id, idx, name, state, started_at, finished_at, status, tail, pgid, started_mark",
        key: &["run_id", "idx"],
    },
    Table {
        name: "log",
        columns: r#"id, at, "user", target, kind, text, run_id"#,
        key: &["id"],
    },
    Table {
        name: "holds",
        columns: "scope, by_nick, by_account, by_source, reason, placed_at, expires_at",
        key: &["scope"],
    },
    Table {
        name: "flags",
        columns: "key, variant, enabled, rollout, beta, version, changed_by, changed_at, reason",
        key: &["key"],
    },
];

/// What a copy moved.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Copied {
    pub log: usize,
    pub holds: usize,
    pub runs: usize,
    pub steps: usize,
    pub flags: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{store} already holds {rows} row(s) in {table}; lever copies only into an empty store (a new file, or a new database), so two deploy logs are never mixed")]
    NotEmpty {
        store: String,
        table: &'static str,
        rows: i64,
    },
    #[error("{0} and {1} are the same store")]
    Same(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Copies everything in `from` into `to`, which must be empty.
pub fn copy(from: &Store, to: &Store) -> Result<Copied, CopyError> {
    if from.location() == to.location() {
        return Err(CopyError::Same(from.location(), to.location()));
    }
    let mut copied = Copied::default();
    let outcome = to.write_within(COPY_WAIT, |target| {
        for table in TABLES {
            let rows: i64 = target
                .query_one(&format!("SELECT COUNT(*) FROM {}", table.name), params![])?
                .get(0)?;
            if rows > 0 {
                return Ok(Err(CopyError::NotEmpty {
                    store: to.location(),
                    table: table.name,
                    rows,
                }));
            }
        }
        for table in TABLES {
            let n = copy_table(from, target, table)?;
            match table.name {
                "runs" => copied.runs = n,
                "steps" => copied.steps = n,
                "log" => copied.log = n,
                "flags" => copied.flags = n,
                _ => copied.holds = n,
            }
        }
        to.after_copy(target)?;
        Ok(Ok(()))
    })?;
    outcome.map(|()| copied)
}

/// Copies one table in key order, a batch at a time; how many rows.
fn copy_table(from: &Store, target: &mut dyn Db, table: &Table) -> Result<usize, StoreError> {
    let width = table.columns.split(',').count();
    let placeholders: Vec<String> = (1..=width).map(|i| format!("?{i}")).collect();
    let insert = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        table.name,
        table.columns,
        placeholders.join(", ")
    );
    let order = table.key.join(", ");
    let mut after: Option<Vec<Value>> = None;
    let mut total = 0;
    loop {
        let (filter, params) = match &after {
            None => (String::new(), Vec::new()),
            Some(last) => (format!("WHERE {}", after_key(table.key)), last.clone()),
        };
        let batch: Vec<Row> = from.read(|db| {
            db.query(
                &format!(
                    "SELECT {} FROM {} {filter} ORDER BY {order} LIMIT {BATCH}",
                    table.columns, table.name
                ),
                &params,
            )
        })?;
        for row in &batch {
            target.execute(&insert, row.values())?;
        }
        total += batch.len();
        let Some(last) = batch.last() else {
            return Ok(total);
        };
        if batch.len() < BATCH {
            return Ok(total);
        }
        after = Some(key_values(table, last));
    }
}

/// The key of `row` (its first key columns come first in `columns`).
fn key_values(table: &Table, row: &Row) -> Vec<Value> {
    row.values()[..table.key.len()].to_vec()
}

/// Rows after the key `?1, ?2…` in key order: `id > ?1`, or `(run_id > ?1 OR (run_id = ?1 AND
/// idx > ?2))`.
fn after_key(key: &[&str]) -> String {
    match key {
        [one] => format!("{one} > ?1"),
        [first, second] => format!("({first} > ?1 OR ({first} = ?1 AND {second} > ?2))"),
        _ => unreachable!("keys have one or two columns"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::holds::Hold;
    use crate::store::log::NewEntry;
    use crate::store::runs::NewRun;
    use crate::store::tests::{postgres_store, temp_store};
    use crate::store::{Phase, RunState};

    fn fill(store: &Store) {
        for i in 0..(BATCH + 7) {
            store
                .append_log(&NewEntry::note("mygrant", None, &format!("note {i}")))
                .unwrap();
        }
        let (run, _) = store
            .start_run(
                &NewRun {
                    target: "site",
                    phase: Phase::Deploy,
                    user: "mygrant",
                    version: Some("r2306"),
                    prev_version: None,
                    note: None,
                    steps: 2,
                },
                "mygrant is deploying site",
            )
            .unwrap();
        store.step_started(run.id, 0, "rollout").unwrap();
        store
            .step_finished(run.id, 0, "ok", None, "done", None)
            .unwrap();
        store
            .finish_run(run.id, 5, RunState::Succeeded, None, None, "site deployed")
            .unwrap();
        store
            .place_hold(
                &Hold {
                    target: Some("site".into()),
                    by_nick: "mygrant".into(),
                    by_account: None,
                    by_source: "mygrant!~m@host".into(),
                    reason: "db migration".into(),
                    placed_at: 1_000,
                    expires_at: None,
                },
                "NO DEPLOY PLEASE (db migration)",
            )
            .unwrap();
        let video = crate::store::flags::FlagState {
            key: "video".into(),
            variant: "on".into(),
            enabled: true,
            rollout: Some(10),
            beta: vec!["alice".into()],
            version: 1,
            changed_by: "mygrant".into(),
            changed_at: 2_000,
            reason: "dark launch".into(),
        };
        store
            .save_flag(
                &video,
                &NewEntry::note("mygrant", None, "FLAG video on 10%"),
            )
            .unwrap();
    }

    /// Everything a store says, for comparing two.
    fn contents(
        store: &Store,
    ) -> (
        Vec<String>,
        Vec<Hold>,
        Vec<String>,
        Vec<crate::store::flags::FlagState>,
    ) {
        let log = store
            .log(100_000, None)
            .unwrap()
            .iter()
            .map(|e| format!("{} {} {}", e.id, e.at, e.text))
            .collect();
        let runs = store
            .runs_since(0, None)
            .unwrap()
            .iter()
            .map(|r| format!("{r:?} {:?}", store.steps(r.id).unwrap()))
            .collect();
        (
            log,
            store.holds().unwrap(),
            runs,
            store.flag_states().unwrap(),
        )
    }

    #[test]
    fn a_store_moves_to_postgres_and_back_whole_and_ids_go_on_after_it() {
        let (file, _dir) = temp_store();
        fill(&file);
        let database = postgres_store();
        let copied = copy(&file, &database).unwrap();
        assert_eq!(
            copied,
            Copied {
                log: BATCH + 7 + 4,
                holds: 1,
                runs: 1,
                steps: 1,
                flags: 1,
            }
        );
        assert_eq!(contents(&database), contents(&file));
        // New entries follow the copied ones, not collide with them.
        let next = database
            .append_log(&NewEntry::note("lever", None, "after the copy"))
            .unwrap();
        assert_eq!(next.id, (BATCH + 7 + 4 + 1) as i64);

        let (back, _dir2) = temp_store();
        copy(&database, &back).unwrap();
        assert_eq!(contents(&back), contents(&database));
    }

    #[test]
    fn a_store_that_holds_anything_is_refused_and_left_as_it_was() {
        let (file, _dir) = temp_store();
        fill(&file);
        let database = postgres_store();
        database
            .append_log(&NewEntry::note("mygrant", None, "already here"))
            .unwrap();
        let refused = copy(&file, &database).unwrap_err();
        assert!(
            refused.to_string().ends_with(
                "already holds 1 row(s) in log; lever copies only into an empty store (a new file, or a new database), so two deploy logs are never mixed"
            ),
            "{refused}"
        );
        assert_eq!(database.log(10, None).unwrap().len(), 1);
        assert!(matches!(copy(&file, &file), Err(CopyError::Same(..))));
    }
}
