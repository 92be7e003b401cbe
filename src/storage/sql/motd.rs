//! SQL for the motd store (to be written).
