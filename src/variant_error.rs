//! Why a variant could not be served: the one error of the compute step (reading the original, the
//! memory budget, the CPU pool, the pipeline), shared by `originals`, which makes most of them, and
//! `variants`, which returns them. Statuses are mapped in `http::error`.

use crate::budget::BudgetError;
use crate::pipeline::PipelineError;
use crate::pool::PoolError;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariantError {
    #[error("original '{0}' not found")]
    OriginalNotFound(String),
    /// The key names an object sizer wrote (it carries the output mark): never an original.
    #[error("'{0}' is a variant written by sizer, not an original")]
    OriginalIsVariant(String),
    #[error("original is {size} bytes, above the limit of {limit}")]
    SourceTooLarge { size: u64, limit: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error(transparent)]
    Budget(#[from] BudgetError),
}
