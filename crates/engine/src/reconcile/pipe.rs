//! The scope's transaction, lent to a writer task: queued writes run in order on it while the
//! engine merges the next batch, and anything that reads takes it back once they are written.

use std::future::Future;
use std::pin::Pin;

use surveyor_store::{StoreError, StoreTx};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::report::ReconcileError;

/// Writes queued ahead of the writer at most: each holds a batch's rows, so the bound is what
/// keeps memory flat when the engine is faster than the database.
const QUEUED: usize = 1;

/// One write on the transaction, owning its rows.
pub(super) type Job = Box<
    dyn for<'t> FnOnce(
            &'t mut StoreTx,
        ) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 't>>
        + Send,
>;

/// Where the open transaction is: nowhere, here, or with the writer task.
#[derive(Default)]
pub(super) enum TxSlot {
    #[default]
    Empty,
    Here(StoreTx),
    Away {
        jobs: mpsc::Sender<Job>,
        writer: JoinHandle<Result<StoreTx, StoreError>>,
    },
}

impl TxSlot {
    pub(super) fn is_empty(&self) -> bool {
        matches!(self, Self::Empty)
    }

    /// The transaction, here, after every queued write ran; `None` when there is none. A write
    /// that failed fails this (its transaction is dropped, so rolled back).
    pub(super) async fn here(&mut self) -> Result<Option<&mut StoreTx>, ReconcileError> {
        if let Self::Away { .. } = self {
            let Self::Away { jobs, writer } = std::mem::take(self) else {
                unreachable!("matched above")
            };
            drop(jobs);
            *self = Self::Here(join(writer).await?);
        }
        Ok(match self {
            Self::Here(tx) => Some(tx),
            _ => None,
        })
    }

    /// Takes the transaction out (to commit or roll it back), once every queued write ran.
    pub(super) async fn take(&mut self) -> Result<Option<StoreTx>, ReconcileError> {
        self.here().await?;
        Ok(match std::mem::take(self) {
            Self::Here(tx) => Some(tx),
            _ => None,
        })
    }

    /// Queues a write; the call returns once it is queued, not written. Without a transaction
    /// the write is dropped (callers open one first).
    pub(super) async fn queue(&mut self, job: Job) -> Result<(), ReconcileError> {
        if let Self::Here(_) = self {
            let Self::Here(tx) = std::mem::take(self) else {
                unreachable!("matched above")
            };
            let (jobs, rx) = mpsc::channel(QUEUED);
            *self = Self::Away {
                jobs,
                writer: tokio::spawn(write_all(tx, rx)),
            };
        }
        let Self::Away { jobs, .. } = self else {
            return Ok(());
        };
        if jobs.send(job).await.is_err() {
            // The writer stopped at a failed write: its error is the answer.
            self.here().await?;
        }
        Ok(())
    }
}

/// The writer task: runs each job in turn and gives the transaction back, or stops at the
/// first failure.
async fn write_all(mut tx: StoreTx, mut jobs: mpsc::Receiver<Job>) -> Result<StoreTx, StoreError> {
    while let Some(job) = jobs.recv().await {
        job(&mut tx).await?;
    }
    Ok(tx)
}

async fn join(writer: JoinHandle<Result<StoreTx, StoreError>>) -> Result<StoreTx, ReconcileError> {
    match writer.await {
        Ok(result) => Ok(result?),
        Err(e) => Err(ReconcileError::Writer(e.to_string())),
    }
}
