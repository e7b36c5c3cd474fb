//! Cancellation of a running change, up to its point of no return.
//!
//! A change can be abandoned cleanly until the new tree is swapped in: everything before that
//! point writes beside the live system (store, staging). The swap itself is the point of no return,
//! so cancelling and committing race through one atomic: whichever comes first wins, and the loser
//! learns it (a cancel that arrives too late is refused, never silently ignored).

use std::sync::{
    Arc,
    atomic::{AtomicU8, Ordering},
};

use crate::engine::EngineError;

const OPEN: u8 = 0;
const CANCELLED: u8 = 1;
const COMMITTING: u8 = 2;

/// A shared cancellation flag for the change in progress.
#[derive(Debug, Clone, Default)]
pub struct Cancellation(Arc<AtomicU8>);

/// Why a cancel request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the change is past its point of no return (the new tree is being swapped in) and finishes"
)]
pub struct TooLate;

impl Cancellation {
    /// Ask the running change to stop. Refused once it has started to commit.
    pub fn cancel(&self) -> Result<(), TooLate> {
        match self
            .0
            .compare_exchange(OPEN, CANCELLED, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => Ok(()),
            Err(CANCELLED) => Ok(()),
            Err(_) => Err(TooLate),
        }
    }

    /// Whether a cancel was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst) == CANCELLED
    }

    /// Whether the change can still be cancelled.
    pub fn is_cancellable(&self) -> bool {
        self.0.load(Ordering::SeqCst) == OPEN
    }

    /// Fail with [`EngineError::Cancelled`] when a cancel was requested.
    pub fn check(&self) -> Result<(), EngineError> {
        if self.is_cancelled() {
            Err(EngineError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Pass the point of no return: from here on a cancel is refused. Fails when a cancel came
    /// first.
    pub fn commit(&self) -> Result<(), EngineError> {
        match self
            .0
            .compare_exchange(OPEN, COMMITTING, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) | Err(COMMITTING) => Ok(()),
            Err(_) => Err(EngineError::Cancelled),
        }
    }

    /// Make the flag ready for the next change.
    pub fn reset(&self) {
        self.0.store(OPEN, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_before_commit_wins() {
        let cancellation = Cancellation::default();
        assert!(cancellation.cancel().is_ok());
        assert!(matches!(cancellation.commit(), Err(EngineError::Cancelled)));
        assert!(matches!(cancellation.check(), Err(EngineError::Cancelled)));
    }

    #[test]
    fn commit_before_cancel_refuses_the_cancel() {
        let cancellation = Cancellation::default();
        cancellation.commit().unwrap();
        assert_eq!(cancellation.cancel(), Err(TooLate));
        assert!(cancellation.check().is_ok());
        cancellation.reset();
        assert!(cancellation.is_cancellable());
    }
}
