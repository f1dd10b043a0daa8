//! Private keys of certificates (placeholder: KeyGenerator moves here with the RSA key pool).
