//! scm-api
