//! Plain records as stored. The domain layer builds and interprets them.

use crate::revocations::CrlRecord;

use scm_proto::{
    AccessKeyId, Brand, CertType, CertificateId, CertificateStatus, DomainId, DomainType, OrderId,
    PrimaryDomainType, ProjectId,
};

/// An account (Huawei "domain").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// Account id.
    pub domain_id: DomainId,
    /// Unique name.
    pub name: String,
    /// Issuance policy: `;`-separated name suffixes the built-in CA may issue for without validation.
    pub policy: String,
    /// The account's renewal window: renew when this many thousandths of a version's lifetime
    /// are left; `None`: the server's setting.
    pub renew_remaining_permille: Option<u32>,
    /// Creation time.
    pub created_ms: i64,
}

/// A project of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRecord {
    /// Project id.
    pub project_id: ProjectId,
    /// Owning account.
    pub domain_id: DomainId,
    /// Name, unique within the account (a region name by Huawei convention).
    pub name: String,
    /// Creation time.
    pub created_ms: i64,
}

/// Whether a credential may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialStatus {
    /// Usable.
    Active,
    /// Revoked; requests signed with it and its tokens are refused.
    Revoked,
}

impl CredentialStatus {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Revoked => "revoked",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

/// An AK/SK credential. The SK is sealed by the caller.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialRecord {
    /// Access key id.
    pub access_key: AccessKeyId,
    /// Owning account.
    pub domain_id: DomainId,
    /// Default project of requests signed with it.
    pub project_id: ProjectId,
    /// Secret key, sealed under the master key.
    pub secret_sealed: Vec<u8>,
    /// Active or revoked.
    pub status: CredentialStatus,
    /// Free text.
    pub description: String,
    /// Creation time.
    pub created_ms: i64,
    /// Revocation time.
    pub revoked_ms: Option<i64>,
}

impl std::fmt::Debug for CredentialRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialRecord")
            .field("access_key", &self.access_key)
            .field("domain_id", &self.domain_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// What a stored token is for. A token is accepted only where its kind is, and each kind has its
/// own per-credential limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An `X-Auth-Token` of the API.
    Api,
    /// A web console session (its cookie).
    ConsoleSession,
}

impl TokenKind {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::ConsoleSession => "console",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "api" => Some(Self::Api),
            "console" => Some(Self::ConsoleSession),
            _ => None,
        }
    }
}

/// An issued `X-Auth-Token` or console session, stored by hash only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// What it is for.
    pub kind: TokenKind,
    /// Hex SHA-256 of the token value.
    pub token_hash: String,
    /// Credential that obtained it.
    pub access_key: AccessKeyId,
    /// Account.
    pub domain_id: DomainId,
    /// Project.
    pub project_id: ProjectId,
    /// Issue time.
    pub issued_ms: i64,
    /// Expiry.
    pub expires_ms: i64,
}

/// A CA's certificates in PEM and its keys sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct CaRecord {
    /// Root certificate.
    pub root_cert_pem: String,
    /// Root key (PKCS#8), sealed.
    pub root_key_sealed: Vec<u8>,
    /// Intermediate certificate.
    pub intermediate_cert_pem: String,
    /// Intermediate key (PKCS#8), sealed.
    pub intermediate_key_sealed: Vec<u8>,
    /// Creation time.
    pub created_ms: i64,
}

impl std::fmt::Debug for CaRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaRecord")
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}

/// What a CA is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaRole {
    /// The CA of one account: it issues that account's certificates and nothing else.
    Tenant,
    /// The CA of the server's own HTTPS certificate; it issues nothing else.
    Serving,
    /// The one CA every account shared before migration 0015, retired.
    Shared,
}

impl CaRole {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::Serving => "serving",
            Self::Shared => "shared",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tenant" => Some(Self::Tenant),
            "serving" => Some(Self::Serving),
            "shared" => Some(Self::Shared),
            _ => None,
        }
    }
}

/// A CA as stored in `cas`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCa {
    /// Its id: the lower-case hex of the intermediate's key identifier (the name of its CRL).
    pub id: String,
    /// What it is for.
    pub role: CaRole,
    /// The owning account of a [`CaRole::Tenant`] CA; `None` for the others.
    pub domain_id: Option<DomainId>,
    /// Certificates and sealed keys.
    pub ca: CaRecord,
    /// When it stopped issuing; `None` while it issues.
    pub retired_ms: Option<i64>,
}

/// What a first start creates, in one transaction.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// The admin account.
    pub account: AccountRecord,
    /// Its project.
    pub project: ProjectRecord,
    /// Its admin credential.
    pub credential: CredentialRecord,
    /// The admin account's CA and the serving CA.
    pub cas: Vec<StoredCa>,
}

/// The product bought: shared by an order and its certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Brand.
    pub brand: Brand,
    /// Certificate type.
    pub cert_type: CertType,
    /// Single, multi-domain or wildcard.
    pub domain_type: DomainType,
    /// Years of validity bought.
    pub effective_time: i64,
    /// Domain names allowed.
    pub domain_numbers: i64,
    /// Multi-domain primary type.
    pub primary_domain_type: Option<PrimaryDomainType>,
    /// Additional single domains.
    pub single_domain_number: Option<i64>,
    /// Additional wildcard domains.
    pub wildcard_domain_number: Option<i64>,
    /// Enterprise project.
    pub enterprise_project_id: String,
}

/// An order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// Order id.
    pub order_id: OrderId,
    /// Account.
    pub domain_id: DomainId,
    /// Project it was bought in.
    pub project_id: ProjectId,
    /// Product.
    pub product: Product,
    /// Number of certificates.
    pub order_number: i64,
    /// Tags as JSON.
    pub tags_json: String,
    /// Creation time.
    pub created_ms: i64,
}

/// Limits of one account, enforced when it buys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Certificates the account may hold.
    pub certificates_per_account: u64,
    /// Orders the account may place per UTC day.
    pub orders_per_day: u64,
    /// CSRs the account may hold (created or uploaded).
    pub csrs_per_account: u64,
}

impl Quotas {
    /// No limit (tests and tools).
    pub const UNLIMITED: Self = Self {
        certificates_per_account: i64::MAX as u64,
        orders_per_day: i64::MAX as u64,
        csrs_per_account: i64::MAX as u64,
    };
}

/// Fields of the certificates an order creates (the id is allocated by the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCertificate {
    /// Name prefix; the store appends nothing, the domain picks it.
    pub name: String,
    /// Initial status.
    pub status: CertificateStatus,
    /// Description.
    pub description: String,
    /// Tags every certificate of the order starts with (the purchase's `tags`), stored where the
    /// tag operations read them.
    pub tags: Vec<crate::TagRecord>,
}

/// A certificate row.
#[derive(Clone, PartialEq, Eq)]
pub struct CertificateRecord {
    /// Id.
    pub id: CertificateId,
    /// Account.
    pub domain_id: DomainId,
    /// Project.
    pub project_id: ProjectId,
    /// Order.
    pub order_id: OrderId,
    /// Name.
    pub name: String,
    /// Status.
    pub status: CertificateStatus,
    /// Product bought.
    pub product: Product,
    /// Description.
    pub description: String,
    /// Tags as JSON.
    pub tags_json: String,
    /// Application (saved or submitted).
    pub application: Option<ApplicationRecord>,
    /// Issued material.
    pub issued: Option<IssuedRecord>,
    /// Creation time.
    pub created_ms: i64,
    /// Last change.
    pub updated_ms: i64,
    /// The issuer (distinguished name) of an imported certificate; `None` for a purchased one.
    /// It is what tells the two apart whatever the status (an imported certificate may be
    /// stored `EXPIRED`).
    pub issuer: Option<String>,
    /// What the import found about the chain of an imported certificate: whether it reaches a
    /// certificate the server trusts. `None` for a purchased certificate, and for one imported
    /// before chains were verified (migration 0012), which counts as not trusted.
    pub chain_trust: Option<ChainTrustRecord>,
    /// When and why it was revoked; `None` unless its status is `REVOKED`.
    pub revocation: Option<RevocationRecord>,
    /// Versions, renewal and validation state.
    pub lifecycle: LifecycleRecord,
}

/// Where a certificate is in its lifecycle: which version is current, when it is due for
/// renewal, and whether a domain validation is pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleRecord {
    /// The seq of the current version (the row's material); `None` before the first issuance.
    pub current_version: Option<u32>,
    /// When the current version is due for renewal; `None` when it is not to be renewed.
    pub renew_at_ms: Option<i64>,
    /// The certificate's auto-renew switch.
    pub auto_renew: bool,
    /// When the pending domain validation began; `None` when none is pending.
    pub validation_started_ms: Option<i64>,
}

impl Default for LifecycleRecord {
    fn default() -> Self {
        Self {
            current_version: None,
            renew_at_ms: None,
            auto_renew: true,
            validation_started_ms: None,
        }
    }
}

/// One issuance of a certificate: its material, why it was made, and when it is due for renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    /// 1, 2, ... in the order of issuance.
    pub seq: u32,
    /// Why it was made: `issued` (the application), `renewal` (automatic), `renewal-manual`
    /// (asked for by a person), `imported`.
    pub reason: String,
    /// The material.
    pub issued: IssuedRecord,
    /// When it was (or is) due for renewal; `None` when it is not renewed.
    pub renew_at_ms: Option<i64>,
}

/// What a new version replaces: the first issuance moves the certificate out of a status, a
/// renewal replaces the current version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionExpect {
    /// The first issuance: the certificate must still be in this status; it becomes `ISSUED`.
    Status(CertificateStatus),
    /// A renewal: the current version must still be this seq, and the certificate `ISSUED` or
    /// `EXPIRED` (it becomes `ISSUED`).
    Current(u32),
}

/// A version to record ([`crate::Versions::add_version`]).
#[derive(Debug, Clone)]
pub struct NewVersion {
    /// The certificate.
    pub id: CertificateId,
    /// What it replaces.
    pub expect: VersionExpect,
    /// The application it was issued for (stored with the first issuance; `None` keeps the
    /// stored one).
    pub application: Option<ApplicationRecord>,
    /// The material.
    pub issued: IssuedRecord,
    /// Why ([`VersionRecord::reason`]).
    pub reason: String,
    /// When it is due for renewal; `None`: never.
    pub renew_at_ms: Option<i64>,
    /// The history entry that goes with it.
    pub event: NewEvent,
    /// When.
    pub now_ms: i64,
}

/// A state change of a certificate to record in its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// What happened: `applied`, `validation_passed`, `validation_failed`, `issued`,
    /// `renewal_scheduled`, `renewed`, `renewal_failed`, `expired`, `cancelled`, `unpassed`,
    /// `auto_renew`.
    pub event: String,
    /// The cause, safe to show (an error, the names, the serial).
    pub detail: String,
    /// Who or what: `user <access key or account>`, `job <id>`, `sweep`.
    pub actor: String,
}

/// A recorded state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// When.
    pub at_ms: i64,
    /// What ([`NewEvent::event`]).
    pub event: String,
    /// Why.
    pub detail: String,
    /// Who.
    pub actor: String,
}

/// Proof of control of one name by one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationRecord {
    /// The name (lower case; `*.` kept for a wildcard).
    pub name: String,
    /// The TXT value and file content, stable for the account and name.
    pub value: String,
    /// The last successful check.
    pub validated_ms: Option<i64>,
    /// The method of the last successful check (`DNS`, `FILE`).
    pub method: Option<String>,
    /// The last check.
    pub checked_ms: Option<i64>,
    /// What the last failed check saw (cleared by a success).
    pub last_error: Option<String>,
}

/// When and why a certificate was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRecord {
    /// When.
    pub revoked_ms: i64,
    /// The reason given (free text, as the API took it).
    pub reason: String,
}

// --- import ---
/// Whether an imported certificate's chain reached a certificate the server trusts when it was
/// imported, and the sentence that says so (or why not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTrustRecord {
    /// The signatures lead to a trust anchor.
    pub trusted: bool,
    /// The verdict in words, naming the anchor reached or where the chain stops.
    pub note: String,
}

impl CertificateRecord {
    /// Whether the user imported it (ImportCertificate) rather than bought it.
    pub fn is_imported(&self) -> bool {
        self.issuer.is_some()
    }

    /// The status it shows at `now_ms` ([`CertificateStatus::at`]: `EXPIRED` once `not_after`
    /// has passed, stored or not).
    pub fn status_at(&self, now_ms: i64) -> CertificateStatus {
        self.status
            .at(self.issued.as_ref().map(|i| i.not_after_ms), now_ms)
    }

    /// The record as it reads at `now_ms`: its status is [`Self::status_at`].
    #[must_use]
    pub fn as_of(mut self, now_ms: i64) -> Self {
        self.status = self.status_at(now_ms);
        self
    }

    /// Whether the certificate can be pushed (and exported with its key): deployable by its
    /// status, and its private key held by OpenSCM (not so for one issued from the user's CSR).
    /// The list's `deploy_support` filter is the SQL form of this rule (a test pins the two).
    pub fn is_pushable(&self) -> bool {
        self.status.is_deployable()
            && self
                .issued
                .as_ref()
                .is_some_and(|i| i.private_key_sealed.is_some())
    }
}

impl std::fmt::Debug for CertificateRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateRecord")
            .field("id", &self.id)
            .field("domain_id", &self.domain_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// The application of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationRecord {
    /// Primary domain.
    pub domain: String,
    /// Additional domains, `;`-separated (empty when none).
    pub sans: String,
    /// Applicant and company data as JSON (personal data; kept apart from the rest).
    pub form_json: String,
    /// Own CSR.
    pub csr_pem: Option<String>,
    /// Validation method.
    pub validation_method: Option<String>,
    /// Key algorithm for a server-generated key.
    pub key_algorithm: Option<String>,
}

/// What issuance produced.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedRecord {
    /// Leaf certificate PEM.
    pub certificate_pem: String,
    /// Chain PEM (intermediates).
    pub chain_pem: String,
    /// Private key (PKCS#8) sealed, when the server generated it.
    pub private_key_sealed: Option<Vec<u8>>,
    /// Serial, hex.
    pub serial_hex: String,
    /// SHA-1 fingerprint, hex.
    pub fingerprint: String,
    /// Signature algorithm name.
    pub signature_algorithm: String,
    /// Issue time.
    pub issued_ms: i64,
    /// Validity start.
    pub not_before_ms: i64,
    /// Validity end.
    pub not_after_ms: i64,
    /// The id of the CA that issued it ([`StoredCa::id`]); `None` for an imported certificate
    /// (and, until the server's first start after migration 0015, for one the shared CA issued).
    pub ca_id: Option<String>,
}

impl std::fmt::Debug for IssuedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedRecord")
            .field("serial_hex", &self.serial_hex)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Sort key of certificate lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// `certExpiredTime`.
    ExpiredTime,
    /// `certStatus`.
    Status,
    /// `certUpdateTime` (default).
    UpdateTime,
}

/// A certificate list query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Only this status.
    pub status: Option<CertificateStatus>,
    /// Substring of name or domain.
    pub content: Option<String>,
    /// Only issued/uploaded certificates.
    pub deploy_support: bool,
    /// Only this enterprise project (`None`: all).
    pub enterprise_project_id: Option<String>,
    /// Leave out certificates that expired before this time (Unix ms); certificates not yet
    /// issued are kept.
    pub expired_after_ms: Option<i64>,
    /// Only certificates whose `not_after` is in `[from, before)` (Unix ms); certificates not
    /// yet issued are left out. The web console's expiry timeline links to these windows.
    pub expires_within: Option<(i64, i64)>,
    /// Sort field.
    pub sort_key: SortKey,
    /// Ascending?
    pub ascending: bool,
    /// Page size.
    pub limit: u32,
    /// Items to skip.
    pub offset: u32,
    /// The time the statuses are read at (Unix ms): an issued or imported certificate past its
    /// `not_after` is `EXPIRED` for the status filter and `deploy_support` from then on.
    pub now_ms: i64,
}

impl Default for ListQuery {
    /// The API's defaults: every status, newest change first, 10 items from the start.
    fn default() -> Self {
        Self {
            status: None,
            content: None,
            deploy_support: false,
            enterprise_project_id: None,
            expired_after_ms: None,
            expires_within: None,
            sort_key: SortKey::UpdateTime,
            ascending: false,
            limit: 10,
            offset: 0,
            now_ms: 0,
        }
    }
}

/// Outcome of one push attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Every target took the certificate.
    Success,
    /// At least one target failed.
    Failure,
    /// The target already served this version (seen by a TLS handshake): nothing was delivered.
    Unchanged,
}

impl PushOutcome {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Unchanged => "unchanged",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Self::Success),
            "failure" => Some(Self::Failure),
            "unchanged" => Some(Self::Unchanged),
            _ => None,
        }
    }
}

/// One push attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRecord {
    /// Certificate pushed.
    pub cert_id: CertificateId,
    /// Account.
    pub domain_id: DomainId,
    /// When.
    pub pushed_ms: i64,
    /// Service (`ELB`, ...).
    pub service: String,
    /// Region, `None` for global services.
    pub region: Option<String>,
    /// Outcome.
    pub outcome: PushOutcome,
    /// Per-target result text.
    pub detail: String,
    /// Names of the targets, `;`-separated (one since deliveries are per target).
    pub targets: String,
    /// The version delivered (`None` in records made before versions were delivered).
    pub version: Option<u32>,
    /// Whether a TLS handshake saw the target serve it.
    pub verified: bool,
    /// The serial the target served at the check, lowercase hex.
    pub served_serial: Option<String>,
    /// The delivery's attempt number (0 in older records).
    pub attempt: u32,
}

/// Where a certificate is deployed: one target, as far as OpenSCM knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRecord {
    /// The certificate.
    pub cert_id: CertificateId,
    /// The target's name.
    pub target: String,
    /// The account.
    pub domain_id: DomainId,
    /// The version last delivered (0: none yet).
    pub version: u32,
    /// SHA-256 of that version's leaf (hex).
    pub sha256: Option<String>,
    /// Whether the target was seen serving it.
    pub verified: bool,
    /// The serial seen served at the last check.
    pub served_serial: Option<String>,
    /// When it was delivered.
    pub delivered_ms: Option<i64>,
    /// When it was seen served.
    pub verified_ms: Option<i64>,
    /// The version whose delivery is failing now, if any.
    pub failing_version: Option<u32>,
    /// Whether the failing delivery was delivered but not served (told once).
    pub not_served: bool,
    /// Why the current delivery fails, or what the drift check saw.
    pub last_error: Option<String>,
    /// When a drift was first seen (cleared by a delivery or a check that finds it served).
    pub drift_ms: Option<i64>,
    /// When the drift sweep last looked.
    pub checked_ms: Option<i64>,
    /// Last change.
    pub updated_ms: i64,
}

impl DeploymentRecord {
    /// The deployment's state in one word: `not_served` (delivered, not served), `failing`,
    /// `drift` (no longer serves what it was given), `pending` (nothing delivered yet), `served`
    /// (seen served by a TLS check) or `delivered` (the target has no check).
    pub fn state(&self) -> &'static str {
        match self {
            Self {
                failing_version: Some(_),
                not_served: true,
                ..
            } => "not_served",
            Self {
                failing_version: Some(_),
                ..
            } => "failing",
            Self {
                drift_ms: Some(_), ..
            } => "drift",
            Self { version: 0, .. } => "pending",
            Self { verified: true, .. } => "served",
            Self { .. } => "delivered",
        }
    }
}

/// A change to where a certificate is deployed, written with the attempt that learned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentChange {
    /// `version` was delivered (and, if `verified`, seen served with `served_serial`).
    Delivered {
        /// The certificate.
        cert_id: CertificateId,
        /// The target.
        target: String,
        /// The account.
        domain_id: DomainId,
        /// The version.
        version: u32,
        /// Its leaf's SHA-256.
        sha256: String,
        /// Seen served.
        verified: bool,
        /// What was served.
        served_serial: Option<String>,
        /// When.
        at_ms: i64,
    },
    /// A delivery of `version` failed (`not_served`: it was delivered but the target does not
    /// serve it).
    Failed {
        /// The certificate.
        cert_id: CertificateId,
        /// The target.
        target: String,
        /// The account.
        domain_id: DomainId,
        /// The version.
        version: u32,
        /// Delivered but not served.
        not_served: bool,
        /// Why.
        error: String,
        /// When.
        at_ms: i64,
    },
    /// The drift sweep looked: `drift` is what it saw when the target no longer serves the
    /// delivered version (`None`: it does, or it could not be asked and nothing is known).
    Checked {
        /// The certificate.
        cert_id: CertificateId,
        /// The target.
        target: String,
        /// What was wrong, if anything.
        drift: Option<String>,
        /// Whether the target answered (a check that could not connect only moves `checked_ms`).
        served_serial: Option<String>,
        /// When.
        at_ms: i64,
    },
}

/// Id of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub i64);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting until it is due.
    Pending,
    /// Leased by a worker (or by a worker that died, until its lease expires).
    Running,
    /// Finished successfully.
    Done,
    /// Gave up: permanent failure or attempts exhausted; `last_error` says why.
    Failed,
}

impl JobState {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Running, Self::Done, Self::Failed]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A job to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// What to do (the runner's handler name), e.g. `deliver`.
    pub kind: String,
    /// Its input, JSON; the store does not look inside.
    pub payload: String,
    /// At most one pending or running job per key.
    pub dedupe_key: Option<String>,
    /// When it may run first.
    pub due_ms: i64,
    /// Claims allowed before it fails.
    pub max_attempts: u32,
    /// When it was added.
    pub created_ms: i64,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// Id.
    pub id: JobId,
    /// Handler name.
    pub kind: String,
    /// Input, JSON.
    pub payload: String,
    /// Idempotency key.
    pub dedupe_key: Option<String>,
    /// State.
    pub state: JobState,
    /// When it may run next.
    pub due_ms: i64,
    /// Claims so far (including the current one when running).
    pub attempts: u32,
    /// Claims allowed.
    pub max_attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Worker holding the lease.
    pub lease_owner: Option<String>,
    /// Claims of the job so far, never given back (unlike `attempts`): while it runs, the token
    /// of the claim that holds it (see [`JobLease`]).
    pub lease_token: i64,
    /// When the lease ends unless renewed, on the database's clock.
    pub lease_expires_ms: Option<i64>,
    /// When it was added.
    pub created_ms: i64,
    /// Last change.
    pub updated_ms: i64,
    /// When it ended (done or failed).
    pub finished_ms: Option<i64>,
}

impl JobRecord {
    /// The claim a running job is held by (`None` unless it is running).
    pub fn lease(&self) -> Option<JobLease> {
        match (&self.state, &self.lease_owner) {
            (JobState::Running, Some(owner)) => Some(JobLease {
                id: self.id,
                owner: owner.clone(),
                token: self.lease_token,
            }),
            _ => None,
        }
    }
}

/// One claim of a job: the worker that holds it and which of the job's claims it is. Renewing
/// the lease, ending the job (with its effects) and releasing it are conditional on it, so an
/// attempt whose lease expired and was claimed again (by another worker, or by the same one)
/// records nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobLease {
    /// The job.
    pub id: JobId,
    /// The worker.
    pub owner: String,
    /// The job's `lease_token` as this claim set it (it grows with every claim).
    pub token: i64,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Finished: the job will not run again.
    Done,
    /// Not ready yet: run again at `due_ms`. The attempt is not counted and the last error is
    /// kept.
    Wait {
        /// Next look.
        due_ms: i64,
    },
    /// Failed for now: run again at `due_ms`.
    Retry {
        /// Next attempt.
        due_ms: i64,
        /// Why this attempt failed.
        error: String,
    },
    /// Failed for good.
    Failed {
        /// Why.
        error: String,
    },
}

/// A change to the store that is part of a job's attempt, written in the same transaction as the
/// job's new state (so an effect is never recorded twice, nor a job marked done without it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEffect {
    /// Record a push attempt in the certificate's history.
    RecordPush(PushRecord),
    /// Record where a certificate is deployed.
    Deployment(DeploymentChange),
    /// Queue another job (e.g. a notification of this job's failure).
    Enqueue(NewJob),
    /// One look of the reminder sweep at a certificate: record the reminder dealt with (sent,
    /// or not wanted), for `CERT_EXPIRED` also store the certificate's status as `EXPIRED` (it
    /// reads so from `not_after` on anyway), and move the certificate's next look.
    RecordReminder(crate::notices::ReminderStep),
    /// Store a CRL just signed, unless one with this number or a higher one is stored already
    /// (the number only grows), and queue `next`, the next signing: at its `due_ms`, or at once
    /// if the CA revoked a certificate after the revocations were read for this CRL (`covers`
    /// is the CA's change count read before them).
    StoreCrl {
        /// The CRL.
        crl: CrlRecord,
        /// The CA's change count the CRL was signed from ([`crate::CrlInputs::changes`]).
        covers: i64,
        /// The next signing of this CA's CRL.
        next: NewJob,
    },
}
