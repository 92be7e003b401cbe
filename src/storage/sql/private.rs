//! SQL for the private store (to be written).
