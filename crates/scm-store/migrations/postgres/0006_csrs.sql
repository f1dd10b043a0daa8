-- Certificate signing requests (CreateCsr, UploadCsr): the PEM, the names and subject they were
-- made for, and the private key sealed under the master key (NULL for a CSR uploaded without it).
CREATE TABLE csrs (
    id                 TEXT PRIMARY KEY,
    domain_id          TEXT NOT NULL REFERENCES accounts (domain_id),
    name               TEXT NOT NULL,
    csr_pem            TEXT NOT NULL,
    domain_name        TEXT NOT NULL,
    sans               TEXT NOT NULL,
    private_key_algo   TEXT,
    usage              TEXT,
    company_country    TEXT,
    company_province   TEXT,
    company_city       TEXT,
    company_name       TEXT,
    private_key_sealed BYTEA,
    created_ms         BIGINT NOT NULL,
    updated_ms         BIGINT NOT NULL
);
CREATE INDEX csrs_by_account ON csrs (domain_id, created_ms);
