//! SQL for the roster store (to be written).
