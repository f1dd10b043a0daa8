//! The names a certificate may carry (placeholder: filled in by the name-rules work).
