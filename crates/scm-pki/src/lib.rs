//! scm-pki
