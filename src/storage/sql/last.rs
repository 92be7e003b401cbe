//! SQL for the last store (to be written).
