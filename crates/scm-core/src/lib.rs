//! scm-core
