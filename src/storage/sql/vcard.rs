//! SQL for the vcard store (to be written).
