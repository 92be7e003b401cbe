//! SQL for the blocking store (to be written).
