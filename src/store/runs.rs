//! Runs (a stage, deploy or rollback of one target) and their steps.

use super::log::{self, LogEntry, LogKind, NewEntry};
use super::sql::{params, Row, Value};
use super::{now_ms, Millis, Store, StoreError};

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Stage,
    Deploy,
    Rollback,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Stage => "stage",
            Phase::Deploy => "deploy",
            Phase::Rollback => "rollback",
        }
    }

    fn parse(text: &str) -> Phase {
        match text {
            "deploy" => Phase::Deploy,
            "rollback" => Phase::Rollback,
            _ => Phase::Stage,
        }
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// lever stopped (crash, kill -9) while it ran.
    Interrupted,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
            RunState::Interrupted => "interrupted",
        }
    }

    fn parse(text: &str) -> RunState {
        match text {
            "running" => RunState::Running,
            "succeeded" => RunState::Succeeded,
            "failed" => RunState::Failed,
            "cancelled" => RunState::Cancelled,
            _ => RunState::Interrupted,
        }
    }
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub id: i64,
    pub target: String,
    pub phase: Phase,
    pub user: String,
    pub state: RunState,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
    /// The version this run built or shipped.
    pub version: Option<String>,
    /// For a deploy or rollback: the version live before it.
    pub prev_version: Option<String>,
    /// Anything the log should remember about how it started ("through a hold by mygrant").
    pub note: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// How many steps it planned.
    pub steps: usize,
    /// Who cancelled it from the channel, if someone did.
    pub stopped_by: Option<String>,
}

/// A step as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    pub run_id: i64,
    pub idx: i64,
    pub name: String,
    /// "running", "ok", "failed", "timed out", "cancelled", "interrupted".
    pub state: String,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
    /// Exit status or error, for a step that did not succeed.
    pub status: Option<String>,
    /// The last lines of its output, newline-separated.
    pub tail: Option<String>,
}

impl StepRecord {
    pub fn duration_ms(&self) -> Option<Millis> {
        self.finished_at.map(|f| f - self.started_at)
    }
}

/// Why an interrupted run stopped; what was found still running follows after "; ".
pub const INTERRUPTED: &str = "lever stopped while it ran";

/// The process group of a step that was running, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningGroup {
    pub run_id: i64,
    pub step: String,
    pub pgid: i32,
    /// Its leader's start ([`crate::process::leftovers::start_mark`]).
    pub mark: String,
}

/// A run about to start.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub target: &'a str,
    pub phase: Phase,
    pub user: &'a str,
    pub version: Option<&'a str>,
    pub prev_version: Option<&'a str>,
    pub note: Option<&'a str>,
    pub steps: usize,
}

const RUN_COLUMNS: &str = r#"id, target, phase, "user", state, started_at, finished_at, version, prev_version, note, error, steps, stopped_by"#;

const STEP_COLUMNS: &str = "run_id, idx, name, state, started_at, finished_at, status, tail";

fn run_from_row(row: &Row) -> Result<Run, StoreError> {
    Ok(Run {
        id: row.get(0)?,
        target: row.get(1)?,
        phase: Phase::parse(&row.get::<String>(2)?),
        user: row.get(3)?,
        state: RunState::parse(&row.get::<String>(4)?),
        started_at: row.get(5)?,
        finished_at: row.get(6)?,
        version: row.get(7)?,
        prev_version: row.get(8)?,
        note: row.get(9)?,
        error: row.get(10)?,
        steps: row.get::<i64>(11)?.max(0) as usize,
        stopped_by: row.get(12)?,
    })
}

fn step_from_row(row: &Row) -> Result<StepRecord, StoreError> {
    Ok(StepRecord {
        run_id: row.get(0)?,
        idx: row.get(1)?,
        name: row.get(2)?,
        state: row.get(3)?,
        started_at: row.get(4)?,
        finished_at: row.get(5)?,
        status: row.get(6)?,
        tail: row.get(7)?,
    })
}

fn runs_of(rows: Vec<Row>) -> Result<Vec<Run>, StoreError> {
    rows.iter().map(run_from_row).collect()
}

fn started_kind(phase: Phase) -> LogKind {
    match phase {
        Phase::Stage => LogKind::StageStarted,
        Phase::Deploy => LogKind::DeployStarted,
        Phase::Rollback => LogKind::RollbackStarted,
    }
}

fn finished_kind(phase: Phase, state: RunState) -> LogKind {
    match (state, phase) {
        (RunState::Succeeded, Phase::Stage) => LogKind::Staged,
        (RunState::Succeeded, Phase::Deploy) => LogKind::Deployed,
        (RunState::Succeeded, Phase::Rollback) => LogKind::RolledBack,
        (RunState::Failed, _) => LogKind::RunFailed,
        (RunState::Cancelled, _) => LogKind::RunCancelled,
        _ => LogKind::RunInterrupted,
    }
}

impl Store {
    /// Records a run as started and logs `text`, in one transaction.
    pub fn start_run(&self, run: &NewRun<'_>, text: &str) -> Result<(Run, LogEntry), StoreError> {
        self.write(|db| {
            let started_at = now_ms();
            let id: i64 = db
                .query_one(
                    r#"INSERT INTO runs (target, phase, "user", state, started_at, version, prev_version, note, steps)
                       VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7, ?8) RETURNING id"#,
                    params![
                        run.target,
                        run.phase.as_str(),
                        run.user,
                        started_at,
                        run.version,
                        run.prev_version,
                        run.note,
                        run.steps
                    ],
                )?
                .get(0)?;
            let entry = log::append(
                db,
                &NewEntry {
                    user: run.user,
                    target: Some(run.target),
                    kind: started_kind(run.phase),
                    text,
                    run_id: Some(id),
                    announce: true,
                },
            )?;
            let stored = Run {
                id,
                target: run.target.to_owned(),
                phase: run.phase,
                user: run.user.to_owned(),
                state: RunState::Running,
                started_at,
                finished_at: None,
                version: run.version.map(str::to_owned),
                prev_version: run.prev_version.map(str::to_owned),
                note: run.note.map(str::to_owned),
                error: None,
                steps: run.steps,
                stopped_by: None,
            };
            Ok((stored, entry))
        })
    }

    /// Records that step `idx` of a run started.
    pub fn step_started(&self, run_id: i64, idx: usize, name: &str) -> Result<(), StoreError> {
        self.write(|db| {
            db.execute(
                "INSERT INTO steps (run_id, idx, name, state, started_at)
                 VALUES (?1, ?2, ?3, 'running', ?4)
                 ON CONFLICT (run_id, idx) DO UPDATE SET name = excluded.name,
                    state = excluded.state, started_at = excluded.started_at,
                    finished_at = NULL, status = NULL, tail = NULL, pgid = NULL,
                    started_mark = NULL",
                params![run_id, idx, name, now_ms()],
            )?;
            Ok(())
        })
    }

    /// Records the process group running step `idx` and its leader's start mark.
    pub fn step_process(
        &self,
        run_id: i64,
        idx: usize,
        pgid: i32,
        mark: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write(|db| {
            db.execute(
                "UPDATE steps SET pgid = ?3, started_mark = ?4 WHERE run_id = ?1 AND idx = ?2",
                params![run_id, idx, pgid, mark],
            )?;
            Ok(())
        })
    }

    /// The process groups of steps still running in runs still running: what a lever that
    /// stopped without finishing them may have left.
    pub fn running_groups(&self) -> Result<Vec<RunningGroup>, StoreError> {
        self.read(|db| {
            db.query(
                "SELECT s.run_id, s.name, s.pgid, s.started_mark FROM steps s
                 JOIN runs r ON r.id = s.run_id
                 WHERE r.state = 'running' AND s.state = 'running'
                   AND s.pgid IS NOT NULL AND s.started_mark IS NOT NULL
                 ORDER BY s.run_id, s.idx",
                params![],
            )?
            .iter()
            .map(|row| {
                Ok(RunningGroup {
                    run_id: row.get(0)?,
                    step: row.get(1)?,
                    pgid: row.get(2)?,
                    mark: row.get(3)?,
                })
            })
            .collect()
        })
    }

    /// Records how step `idx` of a run ended; with `took`, the step's start is set that long
    /// before now (the executor's own measure).
    pub fn step_finished(
        &self,
        run_id: i64,
        idx: usize,
        state: &str,
        status: Option<&str>,
        tail: &str,
        took: Option<std::time::Duration>,
    ) -> Result<StepRecord, StoreError> {
        self.write(|db| {
            let now = now_ms();
            let started = took.map(|d| now - d.as_millis().min(i64::MAX as u128) as i64);
            db.execute(
                "UPDATE steps SET state = ?3, finished_at = ?4, status = ?5, tail = ?6,
                    started_at = COALESCE(?7, started_at)
                 WHERE run_id = ?1 AND idx = ?2",
                params![run_id, idx, state, now, status, tail, started],
            )?;
            step_from_row(&db.query_one(
                &format!("SELECT {STEP_COLUMNS} FROM steps WHERE run_id = ?1 AND idx = ?2"),
                params![run_id, idx],
            )?)
        })
    }

    /// Records who cancelled a run (before it is finished as cancelled).
    pub fn record_stopped_by(&self, run_id: i64, who: &str) -> Result<(), StoreError> {
        self.write(|db| {
            db.execute(
                "UPDATE runs SET stopped_by = ?2 WHERE id = ?1",
                params![run_id, who],
            )?;
            Ok(())
        })
    }

    /// Records how a run ended at `finished_at` (with the version it produced, if any) and logs
    /// `text`, in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_run(
        &self,
        run_id: i64,
        finished_at: Millis,
        state: RunState,
        version: Option<&str>,
        error: Option<&str>,
        text: &str,
    ) -> Result<(Run, LogEntry), StoreError> {
        self.write(|db| {
            db.execute(
                "UPDATE runs SET state = ?2, finished_at = ?3, version = COALESCE(?4, version), error = ?5
                 WHERE id = ?1",
                params![run_id, state.as_str(), finished_at, version, error],
            )?;
            let run = run_from_row(&db.query_one(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                params![run_id],
            )?)?;
            let entry = log::append(
                db,
                &NewEntry {
                    user: &run.user,
                    target: Some(&run.target),
                    kind: finished_kind(run.phase, state),
                    text,
                    run_id: Some(run_id),
                    announce: true,
                },
            )?;
            Ok((run, entry))
        })
    }

    /// Marks every run left running (by a lever that stopped) as interrupted, with its running
    /// step, and logs the text `describe` makes of each, in one transaction. Its error is
    /// [`INTERRUPTED`], then what `leftover` says was found still running, if anything.
    pub fn interrupt_unfinished(
        &self,
        leftover: impl Fn(&Run) -> Option<String>,
        describe: impl Fn(&Run) -> String,
    ) -> Result<Vec<(Run, LogEntry)>, StoreError> {
        self.write(|db| {
            let runs = runs_of(db.query(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE state = 'running' ORDER BY id"),
                params![],
            )?)?;
            let now = now_ms();
            let mut out = Vec::new();
            for mut run in runs {
                db.execute(
                    "UPDATE steps SET state = 'interrupted', finished_at = ?2 WHERE run_id = ?1 AND state = 'running'",
                    params![run.id, now],
                )?;
                let mut error = INTERRUPTED.to_owned();
                if let Some(what) = leftover(&run) {
                    error.push_str(&format!("; {what}"));
                }
                db.execute(
                    "UPDATE runs SET state = 'interrupted', finished_at = ?2, error = ?3 WHERE id = ?1",
                    params![run.id, now, &error],
                )?;
                run.state = RunState::Interrupted;
                run.finished_at = Some(now);
                run.error = Some(error);
                let text = describe(&run);
                let entry = log::append(
                    db,
                    &NewEntry {
                        user: &run.user,
                        target: Some(&run.target),
                        kind: LogKind::RunInterrupted,
                        text: &text,
                        run_id: Some(run.id),
                        announce: true,
                    },
                )?;
                out.push((run, entry));
            }
            Ok(out)
        })
    }

    /// A run by id.
    pub fn run(&self, id: i64) -> Result<Option<Run>, StoreError> {
        self.read(|db| {
            db.query_opt(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                params![id],
            )?
            .map(|row| run_from_row(&row))
            .transpose()
        })
    }

    /// The newest `limit` runs of `target` in any of `phases` that ended in `state`, newest first.
    pub fn runs(
        &self,
        target: &str,
        phases: &[Phase],
        state: RunState,
        limit: usize,
    ) -> Result<Vec<Run>, StoreError> {
        if phases.is_empty() {
            return Ok(Vec::new());
        }
        // ?1 target, ?2 state, ?3 the limit, then one parameter a phase.
        let wanted: Vec<String> = (0..phases.len()).map(|i| format!("?{}", i + 4)).collect();
        let mut params = vec![
            Value::from(target),
            Value::from(state.as_str()),
            Value::from(limit),
        ];
        params.extend(phases.iter().map(|p| Value::from(p.as_str())));
        self.read(|db| {
            runs_of(db.query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE target = ?1 AND state = ?2
                     AND phase IN ({}) ORDER BY id DESC LIMIT ?3",
                    wanted.join(", ")
                ),
                &params,
            )?)
        })
    }

    /// Runs started at or after `since` (milliseconds), of one target or all, oldest first.
    pub fn runs_since(&self, since: Millis, target: Option<&str>) -> Result<Vec<Run>, StoreError> {
        self.read(|db| {
            runs_of(db.query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM runs
                     WHERE started_at >= ?1 AND (CAST(?2 AS TEXT) IS NULL OR target = ?2)
                     ORDER BY started_at, id"
                ),
                params![since, target],
            )?)
        })
    }

    /// The steps of a run, in order.
    pub fn steps(&self, run_id: i64) -> Result<Vec<StepRecord>, StoreError> {
        self.read(|db| {
            db.query(
                &format!("SELECT {STEP_COLUMNS} FROM steps WHERE run_id = ?1 ORDER BY idx"),
                params![run_id],
            )?
            .iter()
            .map(step_from_row)
            .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::on_each_engine;

    fn new_run(phase: Phase) -> NewRun<'static> {
        NewRun {
            target: "site",
            phase,
            user: "harmes",
            version: None,
            prev_version: None,
            note: None,
            steps: 1,
        }
    }

    on_each_engine! {
        fn a_run_is_logged_when_it_starts_and_when_it_ends(store) {
            let (run, start) = store
                .start_run(&new_run(Phase::Deploy), "starting deploy...")
                .unwrap();
            assert_eq!(run.state, RunState::Running);
            assert_eq!(
                (start.kind, start.run_id),
                (LogKind::DeployStarted, Some(run.id))
            );
            store
                .step_started(run.id, 0, "syncing to ramdisk in mud")
                .unwrap();
            let step = store
                .step_finished(
                    run.id,
                    0,
                    "ok",
                    None,
                    "done",
                    Some(std::time::Duration::from_millis(3202)),
                )
                .unwrap();
            assert_eq!(step.duration_ms(), Some(3202));
            assert_eq!(step.name, "syncing to ramdisk in mud");
            assert!(step.duration_ms().unwrap() >= 0);
            let (done, end) = store
                .finish_run(
                    run.id,
                    now_ms(),
                    RunState::Succeeded,
                    Some("abc123"),
                    None,
                    "site deployed",
                )
                .unwrap();
            assert_eq!(done.state, RunState::Succeeded);
            assert_eq!(done.version.as_deref(), Some("abc123"));
            assert_eq!(end.kind, LogKind::Deployed);
            assert_eq!(store.steps(run.id).unwrap().len(), 1);
        }
    }

    on_each_engine! {
        fn runs_left_running_are_marked_interrupted_once(store) {
            let (run, _) = store
                .start_run(&new_run(Phase::Stage), "starting stage...")
                .unwrap();
            store.step_started(run.id, 0, "exporting svn").unwrap();
            let interrupted = store
                .interrupt_unfinished(
                    |_| None,
                    |r| format!("{} {} interrupted", r.target, r.phase.as_str()),
                )
                .unwrap();
            assert_eq!(interrupted.len(), 1);
            assert_eq!(interrupted[0].0.state, RunState::Interrupted);
            assert_eq!(interrupted[0].1.text, "site stage interrupted");
            assert_eq!(store.steps(run.id).unwrap()[0].state, "interrupted");
            assert!(store
                .interrupt_unfinished(|_| None, |_| String::new())
                .unwrap()
                .is_empty());
        }
    }

    on_each_engine! {
        fn runs_are_found_by_target_phase_and_state(store) {
            for version in ["v1", "v2", "v3"] {
                let (run, _) = store
                    .start_run(&new_run(Phase::Deploy), "starting")
                    .unwrap();
                store
                    .finish_run(
                        run.id,
                        now_ms(),
                        RunState::Succeeded,
                        Some(version),
                        None,
                        "deployed",
                    )
                    .unwrap();
            }
            let (failed, _) = store
                .start_run(&new_run(Phase::Deploy), "starting")
                .unwrap();
            store
                .finish_run(
                    failed.id,
                    now_ms(),
                    RunState::Failed,
                    None,
                    Some("boom"),
                    "failed",
                )
                .unwrap();
            let good = store
                .runs(
                    "site",
                    &[Phase::Deploy, Phase::Rollback],
                    RunState::Succeeded,
                    2,
                )
                .unwrap();
            let versions: Vec<_> = good.iter().map(|r| r.version.clone().unwrap()).collect();
            assert_eq!(versions, ["v3", "v2"]);
            assert!(store
                .runs("site", &[Phase::Stage], RunState::Succeeded, 5)
                .unwrap()
                .is_empty());
            assert!(store
                .runs("api", &[Phase::Deploy], RunState::Succeeded, 5)
                .unwrap()
                .is_empty());
        }
    }
}
