//! Trigger runs recorded on states (table `state_trigger`, migration 3).

use sqlx::Row;

use super::{Scope, TriggerRun};
use crate::db::{Database, DatabaseError};

fn context(action: &'static str) -> impl FnOnce(sqlx::Error) -> DatabaseError {
    move |source| DatabaseError {
        action: action.to_owned(),
        source,
    }
}

impl Database {
    /// Replace the trigger runs recorded on a state.
    pub async fn record_trigger_runs(
        &self,
        state: u64,
        runs: &[TriggerRun],
    ) -> Result<(), DatabaseError> {
        let mut transaction = self
            .pool()
            .begin()
            .await
            .map_err(context("recording trigger runs"))?;
        sqlx::query("DELETE FROM state_trigger WHERE state_id = ?")
            .bind(state as i64)
            .execute(&mut *transaction)
            .await
            .map_err(context("recording trigger runs"))?;
        for (position, run) in runs.iter().enumerate() {
            let scope = match run.scope {
                Scope::Transaction => "transaction",
                Scope::System => "system",
            };
            sqlx::query(
                "INSERT INTO state_trigger (state_id, position, scope, trigger, command, success, status, output) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(state as i64)
            .bind(position as i64)
            .bind(scope)
            .bind(&run.trigger)
            .bind(&run.command)
            .bind(run.success)
            .bind(&run.status)
            .bind(&run.output)
            .execute(&mut *transaction)
            .await
            .map_err(context("recording trigger runs"))?;
        }
        transaction
            .commit()
            .await
            .map_err(context("recording trigger runs"))
    }

    /// The trigger runs recorded on a state, in the order they ran.
    pub async fn trigger_runs(&self, state: u64) -> Result<Vec<TriggerRun>, DatabaseError> {
        let rows = sqlx::query(
            "SELECT scope, trigger, command, success, status, output FROM state_trigger WHERE state_id = ? ORDER BY position",
        )
        .bind(state as i64)
        .fetch_all(self.pool())
        .await
        .map_err(context("reading trigger runs"))?;
        Ok(rows
            .into_iter()
            .map(|row| TriggerRun {
                scope: if row.get::<String, _>(0) == "system" {
                    Scope::System
                } else {
                    Scope::Transaction
                },
                trigger: row.get(1),
                command: row.get(2),
                success: row.get(3),
                status: row.get(4),
                output: row.get(5),
            })
            .collect())
    }
}
