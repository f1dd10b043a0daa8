//! The OpenAPI 3.1 description of every route, built from the operation table of `scm-proto` and
//! the JSON Schemas of its wire types (`schemars`, JSON Schema 2020-12, which OpenAPI 3.1 uses).
//!
//! What each operation takes and answers comes from ONE match over [`Operation`] ([`spec`]) with
//! no catch-all arm: a new operation does not compile until it is described here. The error
//! answers of an operation are its error codes grouped by the status [`status_of`] gives each
//! (the same pairing the error mapping sends), each status with the error body whose
//! `error_code` is one of that group.
//!
//! The document is served at `GET /openapi.json` and committed as `docs/openapi.json`
//! (`openscm openapi > docs/openapi.json` writes it; a test fails when the two differ).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use scm_proto::csr::{
    CreateCsrBody, CreateCsrResponse, CsrPrivateKeyResponse, CsrResponse, ListCsrQuery,
    ListCsrResponse, UpdateCsrBody, UploadCsrBody, UploadCsrResponse,
};
use scm_proto::deploy::{
    BatchPushBody, BatchPushResponse, DeployBody, DeployResponse, ListDeployedBody,
    ListDeployedResponse,
};
use scm_proto::import::{ImportCertificateBody, ImportCertificateResponse};
use scm_proto::lifecycle::{CancelCertResponse, UnsubscribeResponse};
use scm_proto::notices::{NoticeBody, NoticeResponse};
use scm_proto::tags::{
    AllTagsResponse, BatchTagsBody, CreateTagBody, DescResponse, ListByTagBody, ListByTagResponse,
    ResourceTagsResponse,
};
use scm_proto::v2::{MessageResponse, PushBody as V2PushBody, PushHistoryResponse, RevokeBody};
use scm_proto::v3::{
    ApplicationBody, AutoRenewBody, AutoRenewResponse, CERTIFICATE_ID_PATTERN, CaRootResponse,
    CertificateDeploymentsResponse, CertificateVersionsResponse, DomainsResponse,
    ExportCertificateResponse, HealthResponse, ListCertificatesQuery, ListCertificatesResponse,
    PurchaseBody, PurchaseResponse, PushBody as V3PushBody, PushToTargetResponse,
    RenewCertificateResponse, RequestInfoResponse, ShowCertificateResponse, TokenResponse,
};
use scm_proto::{CertType, ErrorBody, ErrorCode, Method, Operation, Scope};
use serde_json::{Map, Value, json};

use crate::error::status_of;

/// Builds a schema of a wire type with a generator (a `$ref` into `components/schemas` for
/// responses; inline for requests).
type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// A request body.
enum Body {
    /// None is read (any body sent is ignored).
    None,
    /// A JSON object; `required: false` when an empty body (or `{}`) is accepted too.
    Json {
        /// Its name in `components/schemas`.
        name: &'static str,
        schema: SchemaFn,
        required: bool,
        /// Adjusts the shared type's schema to this operation (the v2 pages' limits).
        patch: Option<fn(&mut Value)>,
    },
}

/// The success answer.
struct Success {
    status: u16,
    description: &'static str,
    /// The JSON body; `None`: no body (or the binary body of [`BINARY_BODIES`]).
    schema: Option<SchemaFn>,
}

/// Operations whose success body is not JSON: their media type and what the body is.
const BINARY_BODIES: &[(Operation, &str, &str)] = &[(
    Operation::CertificateRevocationList,
    "application/pkix-crl",
    "The CRL, DER (RFC 5280).",
)];

/// Everything the description says about one operation.
struct Spec {
    summary: &'static str,
    /// The tag (group) of the operation.
    group: Group,
    /// A struct whose properties are the query parameters.
    query: Option<SchemaFn>,
    body: Body,
    success: Success,
    /// The error codes of this operation, beyond those every operation of its scope answers
    /// ([`common_errors`]).
    errors: &'static [ErrorCode],
}

/// The tags of the description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Meta,
    Iam,
    V2,
    Certificates,
    Tags,
    Lifecycle,
    Csr,
}

impl Group {
    const ALL: [Group; 7] = [
        Self::Meta,
        Self::Iam,
        Self::V2,
        Self::Certificates,
        Self::Tags,
        Self::Lifecycle,
        Self::Csr,
    ];

    const fn name(self) -> &'static str {
        match self {
            Self::Meta => "meta",
            Self::Iam => "iam",
            Self::V2 => "v2",
            Self::Certificates => "certificates",
            Self::Tags => "tags",
            Self::Lifecycle => "lifecycle",
            Self::Csr => "csr",
        }
    }

    const fn description(self) -> &'static str {
        match self {
            Self::Meta => "Liveness, this description and the CRLs; no authentication.",
            Self::Iam => {
                "The IAM calls the SDKs make: a bearer token for an AK/SK, and the caller's domain."
            }
            Self::V2 => {
                "The v2 (historical) routes under /v2/{project_id}/scm; the project must be one of the caller's account."
            }
            Self::Certificates => {
                "v3 certificate operations: buy, apply, show, list, export, push, import."
            }
            Self::Tags => "v3 tags of certificates.",
            Self::Lifecycle => "v3 delete, unsubscribe and cancel of certificates.",
            Self::Csr => "v3 certificate signing requests and their keys.",
        }
    }
}

use ErrorCode as E;

/// The errors of an operation that reads a certificate id from its path and looks it up.
const CERT: &[ErrorCode] = &[E::AbnormalCertificateId, E::CertificateNotFound];
/// ... and takes a JSON body.
const CERT_BODY: &[ErrorCode] = &[
    E::AbnormalCertificateId,
    E::CertificateNotFound,
    E::InvalidParameter,
];
/// ... and changes its status.
const CERT_STATUS: &[ErrorCode] = &[
    E::AbnormalCertificateId,
    E::CertificateNotFound,
    E::WrongStatus,
];
/// ... takes a JSON body and needs a status that allows it.
const CERT_STATUS_BODY: &[ErrorCode] = &[
    E::AbnormalCertificateId,
    E::CertificateNotFound,
    E::InvalidParameter,
    E::WrongStatus,
];
const APPLY: &[ErrorCode] = &[
    E::AbnormalCertificateId,
    E::CertificateNotFound,
    E::InvalidParameter,
    E::WrongStatus,
    E::DomainMismatch,
];
const PUSH: &[ErrorCode] = &[
    E::AbnormalCertificateId,
    E::CertificateNotFound,
    E::InvalidParameter,
    E::WrongStatus,
    E::PushUnsupported,
    E::PushFailed,
];
const PURCHASE: &[ErrorCode] = &[E::InvalidParameter, E::QuotaExceeded];
const NOTICES: &[ErrorCode] = &[
    E::AbnormalCertificateId,
    E::CertificateNotFound,
    E::InvalidParameter,
];
const CSR: &[ErrorCode] = &[E::AbnormalCertificateId, E::CertificateNotFound];
const CSR_BODY: &[ErrorCode] = &[
    E::AbnormalCertificateId,
    E::CertificateNotFound,
    E::InvalidParameter,
];

// --- import ---
const IMPORT: &[ErrorCode] = &[
    E::InvalidParameter,
    E::QuotaExceeded,
    E::CertificateName,
    E::CertificateMarkers,
    E::CertificateEmpty,
    E::CertificateUnparsable,
    E::ChainUnparsable,
    E::ChainOrder,
    E::CertificateWithoutDomain,
    E::KeyMarkers,
    E::KeyUnparsable,
    E::KeyMismatch,
];

fn json_body(name: &'static str, schema: SchemaFn) -> Body {
    Body::Json {
        name,
        schema,
        required: true,
        patch: None,
    }
}

const fn ok(description: &'static str, schema: SchemaFn) -> Success {
    Success {
        status: 200,
        description,
        schema: Some(schema),
    }
}

/// What each operation takes and answers (checked against the handlers: statuses, bodies,
/// extractors). No catch-all arm: a new operation does not compile until it is described.
fn spec(op: Operation) -> Spec {
    match op {
        Operation::Health => Spec {
            summary: "Liveness probe",
            group: Group::Meta,
            query: None,
            body: Body::None,
            success: ok("The server is up.", schema::<HealthResponse>),
            errors: &[],
        },
        Operation::CreateToken => Spec {
            summary: "A bearer token for the AK/SK that signed the request",
            group: Group::Iam,
            query: None,
            body: Body::None,
            success: Success {
                status: 201,
                description: "The token is in the X-Subject-Token header; send it as X-Auth-Token.",
                schema: Some(schema::<TokenResponse>),
            },
            errors: &[],
        },
        Operation::KeystoneListAuthDomains => Spec {
            summary: "The caller's domain (account), as IAM lists it",
            group: Group::Iam,
            query: None,
            body: Body::None,
            success: ok("The caller's account.", schema::<DomainsResponse>),
            errors: &[],
        },
        Operation::V2PurchaseCertificate => Spec {
            summary: "Buy certificates (v2)",
            group: Group::V2,
            query: None,
            body: Body::Json {
                name: "V2PurchaseBody",
                schema: schema::<PurchaseBody>,
                required: true,
                patch: Some(v2_purchase),
            },
            success: ok(
                "The order and its certificates.",
                schema::<PurchaseResponse>,
            ),
            errors: PURCHASE,
        },
        Operation::V2SaveApplication => Spec {
            summary: "Save a draft application (v2)",
            group: Group::V2,
            query: None,
            body: Body::Json {
                name: "V2ApplicationBody",
                schema: schema::<ApplicationBody>,
                required: true,
                patch: Some(v2_application),
            },
            success: ok("Saved.", schema::<RequestInfoResponse>),
            errors: APPLY,
        },
        Operation::V2CompleteApplication => Spec {
            summary: "Submit the application (v2); without a body (or with {}) the saved draft",
            group: Group::V2,
            query: None,
            body: Body::Json {
                name: "V2ApplicationBody",
                schema: schema::<ApplicationBody>,
                required: false,
                patch: Some(v2_application),
            },
            success: ok("Submitted.", schema::<RequestInfoResponse>),
            errors: APPLY,
        },
        Operation::V2PushCertificate => Spec {
            summary: "Push a certificate to a service (v2)",
            group: Group::V2,
            query: None,
            body: json_body("V2PushBody", schema::<V2PushBody>),
            success: ok("Pushed.", schema::<MessageResponse>),
            errors: PUSH,
        },
        Operation::V2ListPushHistory => Spec {
            summary: "The last 10 pushes of a certificate (v2)",
            group: Group::V2,
            query: None,
            body: Body::None,
            success: ok("Newest first.", schema::<PushHistoryResponse>),
            errors: CERT,
        },
        // --- revocation ---
        Operation::V2RevokeCertificate => Spec {
            summary: "Revoke an issued certificate (v2); its CA's CRL lists it at once",
            group: Group::V2,
            query: None,
            body: json_body("V2RevokeBody", schema::<RevokeBody>),
            success: ok("Revoked (status REVOKED).", schema::<MessageResponse>),
            errors: CERT_STATUS_BODY,
        },
        Operation::ListCertificates => Spec {
            summary: "List certificates",
            group: Group::Certificates,
            query: Some(schema::<ListCertificatesQuery>),
            body: Body::None,
            success: ok(
                "One page and the total.",
                schema::<ListCertificatesResponse>,
            ),
            errors: &[E::InvalidParameter],
        },
        Operation::SubscribeCertificate => Spec {
            summary: "Buy certificates",
            group: Group::Certificates,
            query: None,
            body: json_body("PurchaseBody", schema::<PurchaseBody>),
            success: ok(
                "The order and its certificates.",
                schema::<PurchaseResponse>,
            ),
            errors: PURCHASE,
        },
        Operation::ShowCertificate => Spec {
            summary: "One certificate",
            group: Group::Certificates,
            query: None,
            body: Body::None,
            success: ok(
                "Every key is present, null when unset.",
                schema::<ShowCertificateResponse>,
            ),
            errors: CERT,
        },
        Operation::ApplyCertificate => Spec {
            summary: "Submit the application of a bought certificate (issue)",
            group: Group::Certificates,
            query: None,
            body: json_body("ApplicationBody", schema::<ApplicationBody>),
            success: ok("Submitted.", schema::<RequestInfoResponse>),
            errors: APPLY,
        },
        Operation::ExportCertificate => Spec {
            summary: "Export the certificate, its chain and its key",
            group: Group::Certificates,
            query: None,
            body: Body::None,
            success: ok("The PEM texts.", schema::<ExportCertificateResponse>),
            errors: CERT_STATUS,
        },
        Operation::PushCertificate => Spec {
            summary: "Push a certificate to a service",
            group: Group::Certificates,
            query: None,
            body: json_body("PushBody", schema::<V3PushBody>),
            success: Success {
                status: 204,
                description: "Pushed; no body.",
                schema: None,
            },
            errors: PUSH,
        },
        // --- import ---
        Operation::ImportCertificate => Spec {
            summary: "Import a certificate made elsewhere, with its chain and key",
            group: Group::Certificates,
            query: None,
            body: json_body("ImportCertificateBody", schema::<ImportCertificateBody>),
            success: ok(
                "Imported (status UPLOAD).",
                schema::<ImportCertificateResponse>,
            ),
            errors: IMPORT,
        },
        // --- tags ---
        Operation::CreateCertificateTag => Spec {
            summary: "Add one tag to a certificate (or replace the value of its key)",
            group: Group::Tags,
            query: None,
            body: json_body("CreateTagBody", schema::<CreateTagBody>),
            success: ok("Added.", schema::<DescResponse>),
            errors: CERT_BODY,
        },
        Operation::ListTagsByCertificate => Spec {
            summary: "The tags of a certificate",
            group: Group::Tags,
            query: None,
            body: Body::None,
            success: ok("By key.", schema::<ResourceTagsResponse>),
            errors: CERT,
        },
        Operation::BatchCreateOrDeleteTags => Spec {
            summary: "Add or delete tags of a certificate in one call",
            group: Group::Tags,
            query: None,
            body: json_body("BatchTagsBody", schema::<BatchTagsBody>),
            success: ok("Done.", schema::<DescResponse>),
            errors: CERT_BODY,
        },
        Operation::ListAllTags => Spec {
            summary: "Every tag key of the account's certificates, with its values",
            group: Group::Tags,
            query: None,
            body: Body::None,
            success: ok("Keys and values, sorted.", schema::<AllTagsResponse>),
            errors: &[],
        },
        // --- lifecycle ---
        Operation::DeleteCertificate => Spec {
            summary: "Delete a certificate",
            group: Group::Lifecycle,
            query: None,
            body: Body::None,
            success: Success {
                status: 204,
                description: "Deleted; no body.",
                schema: None,
            },
            errors: CERT_STATUS,
        },
        Operation::UnsubscribeCertificate => Spec {
            summary: "Unsubscribe (refund) a bought certificate; it is gone afterwards",
            group: Group::Lifecycle,
            query: None,
            body: Body::None,
            success: ok("Unsubscribed.", schema::<UnsubscribeResponse>),
            errors: CERT_STATUS,
        },
        Operation::CancelCertificateRequest => Spec {
            summary: "Withdraw a submitted application",
            group: Group::Lifecycle,
            query: None,
            body: Body::None,
            success: ok("Withdrawn.", schema::<CancelCertResponse>),
            errors: CERT_STATUS,
        },
        // --- by tag ---
        Operation::ListCertificatesByTag => Spec {
            summary: "Filter or count the account's certificates by tags and name",
            group: Group::Tags,
            query: None,
            body: Body::Json {
                name: "ListByTagBody",
                schema: schema::<ListByTagBody>,
                required: false,
                patch: None,
            },
            success: ok("The matching certificates.", schema::<ListByTagResponse>),
            errors: &[E::InvalidParameter],
        },
        // --- notices ---
        Operation::EnableNotification => Spec {
            summary: "Turn expiry reminders of certificates on",
            group: Group::Certificates,
            query: None,
            body: json_body("NoticeList", schema::<Vec<NoticeBody>>),
            success: ok("Done.", schema::<NoticeResponse>),
            errors: NOTICES,
        },
        Operation::DisableNotification => Spec {
            summary: "Turn expiry reminders of certificates off",
            group: Group::Certificates,
            query: None,
            body: json_body("NoticeList", schema::<Vec<NoticeBody>>),
            success: ok("Done.", schema::<NoticeResponse>),
            errors: NOTICES,
        },
        // --- csr ---
        Operation::CreateCsr => Spec {
            summary: "Generate a key and a CSR on the server",
            group: Group::Csr,
            query: None,
            body: json_body("CreateCsrBody", schema::<CreateCsrBody>),
            success: Success {
                status: 201,
                description: "Created.",
                schema: Some(schema::<CreateCsrResponse>),
            },
            errors: &[E::InvalidParameter],
        },
        Operation::ListCsr => Spec {
            summary: "The account's CSRs, a page of them",
            group: Group::Csr,
            query: Some(schema::<ListCsrQuery>),
            body: Body::None,
            success: ok("A page.", schema::<ListCsrResponse>),
            errors: &[E::InvalidParameter],
        },
        Operation::ShowCsr => Spec {
            summary: "One CSR, with its PEM",
            group: Group::Csr,
            query: None,
            body: Body::None,
            success: ok("The CSR.", schema::<CsrResponse>),
            errors: CSR,
        },
        Operation::UpdateCsr => Spec {
            summary: "Rename a CSR",
            group: Group::Csr,
            query: None,
            body: json_body("UpdateCsrBody", schema::<UpdateCsrBody>),
            success: ok("Renamed.", schema::<CsrResponse>),
            errors: CSR_BODY,
        },
        Operation::DeleteCsr => Spec {
            summary: "Delete a CSR and its key",
            group: Group::Csr,
            query: None,
            body: Body::None,
            success: Success {
                status: 204,
                description: "Deleted; no body.",
                schema: None,
            },
            errors: CSR,
        },
        Operation::ShowCsrPrivateKey => Spec {
            summary: "The private key of a CSR",
            group: Group::Csr,
            query: None,
            body: Body::None,
            success: ok("The key, PEM.", schema::<CsrPrivateKeyResponse>),
            errors: &[
                E::AbnormalCertificateId,
                E::CertificateNotFound,
                E::WrongStatus,
            ],
        },
        Operation::UploadCsr => Spec {
            summary: "Store a CSR made elsewhere, with its key or without",
            group: Group::Csr,
            query: None,
            body: json_body("UploadCsrBody", schema::<UploadCsrBody>),
            success: ok("Stored.", schema::<UploadCsrResponse>),
            errors: &[E::InvalidParameter, E::KeyMismatch],
        },
        // --- multi-target push ---
        Operation::BatchPushCertificate => Spec {
            summary: "Push a certificate to several regions of a service",
            group: Group::Certificates,
            query: None,
            body: json_body("BatchPushBody", schema::<BatchPushBody>),
            success: ok(
                "One result per region; a region that failed says why in its message.",
                schema::<BatchPushResponse>,
            ),
            errors: CERT_STATUS_BODY,
        },
        Operation::DeployCertificate => Spec {
            summary: "Push a certificate to named resources (push targets) of a service",
            group: Group::Certificates,
            query: None,
            body: json_body("DeployBody", schema::<DeployBody>),
            success: ok(
                "The resources that failed (`[]`: every one succeeded).",
                schema::<DeployResponse>,
            ),
            errors: CERT_STATUS_BODY,
        },
        Operation::ListDeployedResources => Spec {
            summary: "Where certificates are deployed, by service and region",
            group: Group::Certificates,
            query: None,
            body: json_body("ListDeployedBody", schema::<ListDeployedBody>),
            success: ok(
                "One result per certificate.",
                schema::<ListDeployedResponse>,
            ),
            errors: CERT_BODY,
        },
        // --- openapi ---
        Operation::OpenApiDescription => Spec {
            summary: "This OpenAPI 3.1 description",
            group: Group::Meta,
            query: None,
            body: Body::None,
            success: ok("The OpenAPI document.", schema::<OpenApiDocument>),
            errors: &[],
        },
        // --- revocation ---
        Operation::CertificateRevocationList => Spec {
            summary: "The CRL of a CA of this server (DER), the CRL distribution point of the certificates it issues",
            group: Group::Meta,
            query: None,
            body: Body::None,
            success: Success {
                status: 200,
                description: "The CA's current CRL: signed, with nextUpdate; re-signed before it lapses and at once after a revocation.",
                schema: None,
            },
            // No such CA (or its first CRL not signed yet): 404; the store can fail.
            errors: &[E::RouteNotFound, E::Internal, E::Unavailable],
        },
        // --- tenant ca ---
        Operation::ShowCaRoot => Spec {
            summary: "OpenSCM extension: the root certificate of the account's own CA, for its clients to trust",
            group: Group::Certificates,
            query: None,
            body: Body::None,
            success: ok(
                "The account's root (every certificate issued to it chains to it, no other account's does), and the roots of retired CAs that issued its older certificates.",
                schema::<CaRootResponse>,
            ),
            errors: &[],
        },
        // --- versions and renewal ---
        Operation::ListCertificateVersions => Spec {
            summary: "OpenSCM extension: a certificate's versions, its renewal state and the history of its state changes",
            group: Group::Certificates,
            query: None,
            body: Body::None,
            success: ok(
                "Its versions (newest first), whether and when it is renewed, and its state changes (oldest first).",
                schema::<CertificateVersionsResponse>,
            ),
            errors: CERT,
        },
        Operation::RenewCertificate => Spec {
            summary: "OpenSCM extension: renew a certificate now",
            group: Group::Certificates,
            query: None,
            body: Body::None,
            success: ok(
                "The renewal of the current version is queued: a new key, the same names, the next version; pushed again where the current one was delivered.",
                schema::<RenewCertificateResponse>,
            ),
            errors: CERT_STATUS,
        },
        Operation::UpdateAutoRenew => Spec {
            summary: "OpenSCM extension: turn a certificate's automatic renewal on or off",
            group: Group::Certificates,
            query: None,
            body: Body::Json {
                name: "AutoRenewBody",
                schema: schema::<AutoRenewBody>,
                required: true,
                patch: None,
            },
            success: ok("The switch as it is now.", schema::<AutoRenewResponse>),
            errors: CERT_BODY,
        },
        Operation::ExportCertificateVersion => Spec {
            summary: "OpenSCM extension: the certificate, chain and key of one version (an earlier one too)",
            group: Group::Certificates,
            query: None,
            body: Body::None,
            success: ok(
                "The version's certificate, chain and (when OpenSCM holds it) key.",
                schema::<ExportCertificateResponse>,
            ),
            errors: CERT_STATUS_BODY,
        },
        // --- deployments ---
        Operation::ListCertificateDeployments => Spec {
            summary: "OpenSCM extension: where a certificate is deployed, per push target, and its latest delivery attempts",
            group: Group::Certificates,
            query: None,
            body: Body::None,
            success: ok(
                "Per target: the version it holds, whether a TLS check saw it served, the delivery failing now, drift; then the latest attempts (every outcome), newest first.",
                schema::<CertificateDeploymentsResponse>,
            ),
            errors: CERT,
        },
        Operation::PushCertificateToTarget => Spec {
            summary: "OpenSCM extension: deliver the current version to one push target, by name",
            group: Group::Certificates,
            query: None,
            body: Body::None,
            success: ok(
                "The target took the current version (and, when it has a TLS check, serves it). A failure that will be retried is SCM.0028 saying `pending retry` and when.",
                schema::<PushToTargetResponse>,
            ),
            errors: PUSH,
        },
    }
}

/// The body of `GET /openapi.json`: an OpenAPI 3.1 document.
struct OpenApiDocument;

impl JsonSchema for OpenApiDocument {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OpenApiDocument".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "An OpenAPI 3.1 document (this one).",
            "type": "object",
            "required": ["openapi", "info", "paths"],
            "properties": {
                "openapi": {"type": "string", "pattern": "^3\\.1\\.[0-9]+$"}
            }
        })
    }
}

/// The errors every operation of `scope` can answer, whatever it does.
fn common_errors(op: Operation) -> Vec<ErrorCode> {
    // The accept loop answers a connection over the cap (raw, before any request is read); the
    // request deadline bounds every request.
    let mut codes = vec![E::TooManyConnections, E::RequestTimeout];
    if op.scope() != Scope::Public {
        // The guard: authentication, the body's size and deadline, the account's rate; and what
        // the store can answer for every authenticated request.
        codes.extend([
            E::AuthFailed,
            E::BodyTooLarge,
            E::BodyTimeout,
            E::Throttled,
            E::Internal,
            E::Unavailable,
        ]);
    }
    if op.scope() == Scope::Project {
        // The project of the path is not one of the caller's account.
        codes.push(E::TenantNoPrivilege);
    }
    if op.path().contains('{') {
        // A path parameter that makes the path match no route, or another route (another
        // method's: `GET /v3/scm/certificates/buy`).
        codes.extend([E::RouteNotFound, E::MethodNotAllowed]);
    }
    codes
}

/// What a code means, for the description of an error answer.
const fn code_note(code: ErrorCode) -> &'static str {
    match code {
        E::TenantNoPrivilege => "the project of the path is not one of the caller's account",
        E::InvalidParameter => "a parameter is missing or wrong; error_msg names it",
        E::AbnormalCertificateId => "the certificate id is not `scs` + 13 digits",
        E::WrongStatus => "not allowed in the certificate's current status",
        E::DomainMismatch => "the domain names do not fit the product bought",
        E::CertificateNotFound => "no such certificate of the caller's account",
        E::PushFailed => "delivering to a push target failed",
        E::PushUnsupported => "no push target for this service and region",
        E::Internal => "internal error",
        E::Unavailable => "the database is unavailable for now; retry later",
        E::AuthFailed => "authentication failed: missing, malformed, unknown, expired or bad",
        E::RouteNotFound => "the path matches no route",
        E::MethodNotAllowed => "the path is another route's, which does not take this method",
        E::BodyTooLarge => "the body is larger than 1 MiB",
        E::BodyTimeout => "the body did not arrive in time",
        E::RequestTimeout => "the request took too long",
        E::Throttled => "too many requests from this account; see Retry-After",
        E::TooManyConnections => "too many connections open; sent before closing the connection",
        E::QuotaExceeded => "the account's quota of certificates or orders is reached",
        E::KeyMismatch => "the private key does not belong to the CSR or certificate",
        // --- import ---
        E::CertificateUnparsable => {
            "the imported certificate is not a valid X.509 certificate, or cannot be used: a CA \
             certificate, a critical extension not processed, not valid yet"
        }
        E::CertificateWithoutDomain => "the imported certificate names no DNS name",
        E::KeyUnparsable => {
            "the imported private key does not parse, is passphrase-protected or unsupported"
        }
        E::ChainUnparsable => {
            "the imported certificate chain does not parse, or a certificate of it has a \
             critical extension not processed"
        }
        E::CertificateName => "the certificate name is not 3..63 of A-Z a-z 0-9 _ - .",
        E::CertificateMarkers => "the imported certificate lacks its BEGIN/END markers",
        E::CertificateEmpty => "the imported certificate is empty between its markers",
        E::ChainOrder => {
            "the chain does not verify: out of order (each issuer must be the next \
             certificate's subject), a signature that does not verify with the next \
             certificate's key, a loop, or a certificate that may not issue the one below it"
        }
        E::KeyMarkers => "the imported private key lacks its BEGIN/END markers",
    }
}

/// The generator of response schemas: `$ref`s into `components/schemas`, for serialisation.
fn response_generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .for_serialize()
        .into_generator()
}

/// The generator of request schemas: inline (a request type and a response type may share a
/// name and differ by contract), for deserialisation.
fn request_generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .for_deserialize()
        .into_generator()
}

/// The `{name}` placeholders of a route template, in order.
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn path_param(name: &str) -> Value {
    let (description, schema) = match name {
        "project_id" => (
            "A project of the caller's account: 32 lower-case hex characters.",
            json!({"type": "string", "pattern": "^[0-9a-f]{32}$"}),
        ),
        "crl_file" => (
            "`<ca id>.crl`: the CA's id is the lower-case hex of its key identifier.",
            json!({"type": "string", "pattern": "^[0-9a-f]{2,128}\\.crl$"}),
        ),
        // The CSR routes' `{id}`.
        "id" => (
            "CSR id: 32 lower-case hex characters.",
            json!({"type": "string", "pattern": "^[0-9a-f]{32}$"}),
        ),
        // `cert_id`, `certificate_id`, `resource_id`: the extractor's names.
        _ => (
            "Certificate id: `scs` + a 13-digit millisecond timestamp.",
            json!({"type": "string", "pattern": CERTIFICATE_ID_PATTERN}),
        ),
    };
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "description": description,
        "schema": schema,
    })
}

/// Removes `null` from a schema's `type` and `enum` (a query parameter is never null).
fn without_null(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = obj.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            obj.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(values)) = obj.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
}

/// The properties of a query struct's schema as query parameters.
fn query_params(schema: Value) -> Vec<Value> {
    let Value::Object(mut obj) = schema else {
        return Vec::new();
    };
    let Some(Value::Object(props)) = obj.remove("properties") else {
        return Vec::new();
    };
    props
        .into_iter()
        .map(|(name, mut prop)| {
            let description = prop.as_object_mut().and_then(|p| p.remove("description"));
            without_null(&mut prop);
            let mut param = Map::new();
            param.insert("name".into(), json!(name));
            param.insert("in".into(), json!("query"));
            param.insert("required".into(), json!(false));
            if let Some(d) = description {
                param.insert("description".into(), d);
            }
            param.insert("schema".into(), prop);
            Value::Object(param)
        })
        .collect()
}

fn property<'a>(schema: &'a mut Value, name: &str) -> Option<&'a mut Map<String, Value>> {
    schema
        .get_mut("properties")
        .and_then(|p| p.get_mut(name))
        .and_then(Value::as_object_mut)
}

/// The v2 purchase page: only the fields v2 reads (the others are ignored), OV and EV types,
/// 1 or 2 years, up to 1000 certificates.
fn v2_purchase(schema: &mut Value) {
    const V2_FIELDS: &[&str] = &[
        "cert_brand",
        "cert_type",
        "domain_type",
        "effective_time",
        "domain_numbers",
        "order_number",
        "agree_privacy_protection",
    ];
    if let Some(Value::Object(props)) = schema.get_mut("properties") {
        props.retain(|k, _| V2_FIELDS.contains(&k.as_str()));
    }
    if let Some(p) = property(schema, "cert_type") {
        p.insert(
            "enum".into(),
            json!(CertType::V2.iter().map(|t| t.as_str()).collect::<Vec<_>>()),
        );
    }
    if let Some(p) = property(schema, "effective_time") {
        p.insert("maximum".into(), json!(2));
    }
    if let Some(p) = property(schema, "order_number") {
        p.insert("maximum".into(), json!(1000));
    }
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "description".into(),
            json!("v2 purchase request: the fields of the v2 page (others are ignored)."),
        );
    }
}

/// The v2 save/complete pages: `country` must be present (the company fields only for OV and
/// EV certificates, which a schema cannot say), the applicant name is 0..63 characters, the
/// e-mail fields have no form checked (the page's own example is `example.huawei.com`), a CSR
/// at most 8192; no validation method (v3 only).
fn v2_application(schema: &mut Value) {
    if let Some(p) = property(schema, "country") {
        p.insert("type".into(), json!("string"));
    }
    if let Some(p) = property(schema, "applicant_name") {
        p.insert("minLength".into(), json!(0));
        p.insert("maxLength".into(), json!(63));
    }
    if let Some(p) = property(schema, "applicant_email") {
        p.insert("minLength".into(), json!(1));
    }
    if let Some(p) = property(schema, "csr") {
        p.insert("maxLength".into(), json!(8192));
    }
    if let Some(Value::Object(props)) = schema.get_mut("properties") {
        props.remove("domain_method");
        props.remove("auto_dns_auth");
    }
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|r| r != "domain_method");
        required.push(json!("country"));
    }
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "description".into(),
            json!(
                "v2 application form (save and complete): `country` is required; \
                 `company_name`, `company_province` and `company_city` are required for OV and \
                 EV certificates."
            ),
        );
    }
}

/// The error answers of `op`: its codes by status, each with the error body restricted to them.
fn error_responses(op: Operation, errors: &[ErrorCode]) -> BTreeMap<u16, Value> {
    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for &code in common_errors(op).iter().chain(errors) {
        let codes = by_status.entry(status_of(code).as_u16()).or_default();
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    by_status
        .into_iter()
        .map(|(status, mut codes)| {
            codes.sort_by_key(|c| c.as_str());
            let notes: Vec<String> = codes
                .iter()
                .map(|c| format!("`{}`: {}", c.as_str(), code_note(*c)))
                .collect();
            let mut headers = Map::new();
            headers.insert(
                "X-Request-Id".into(),
                json!({"$ref": "#/components/headers/XRequestId"}),
            );
            if codes.contains(&E::Throttled) {
                headers.insert(
                    "Retry-After".into(),
                    json!({"$ref": "#/components/headers/RetryAfter"}),
                );
            }
            let response = json!({
                "description": notes.join("; "),
                "headers": headers,
                "content": {"application/json": {"schema": {
                    "allOf": [{"$ref": "#/components/schemas/ErrorBody"}],
                    "properties": {"error_code": {
                        "enum": codes.iter().map(|c| c.as_str()).collect::<Vec<_>>()
                    }},
                }}},
            });
            (status, response)
        })
        .collect()
}

fn security(op: Operation) -> Value {
    match op.scope() {
        Scope::Public => json!([]),
        Scope::Account | Scope::Project => json!([{"sdkHmacSha256": []}, {"authToken": []}]),
    }
}

fn method_key(m: Method) -> &'static str {
    match m {
        Method::Get => "get",
        Method::Post => "post",
        Method::Put => "put",
        Method::Delete => "delete",
    }
}

/// The OpenAPI 3.1 document of every operation of [`Operation::ALL`].
pub fn document() -> Value {
    let mut responses_gen = response_generator();
    let mut requests_gen = request_generator();
    let mut bodies = Map::new();
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    // Every error answer refers to it.
    schema::<ErrorBody>(&mut responses_gen);
    for &op in Operation::ALL {
        let spec = spec(op);
        let mut parameters: Vec<Value> =
            path_params(op.path()).into_iter().map(path_param).collect();
        if let Some(query) = spec.query {
            parameters.extend(query_params(query(&mut requests_gen).to_value()));
        }
        let mut operation = Map::new();
        operation.insert("operationId".into(), json!(op.name()));
        operation.insert("summary".into(), json!(spec.summary));
        operation.insert("tags".into(), json!([spec.group.name()]));
        if !parameters.is_empty() {
            operation.insert("parameters".into(), Value::Array(parameters));
        }
        if let Body::Json {
            name,
            schema,
            required,
            patch,
        } = spec.body
        {
            let mut body = schema(&mut requests_gen).to_value();
            if let Some(patch) = patch {
                patch(&mut body);
            }
            bodies.insert(name.into(), body);
            let reference = json!({"$ref": format!("#/components/schemas/{name}")});
            let schema = if required {
                reference
            } else {
                json!({"anyOf": [reference, {"type": "object", "maxProperties": 0}]})
            };
            operation.insert(
                "requestBody".into(),
                json!({"required": required, "content": {"application/json": {"schema": schema}}}),
            );
        }
        let mut responses = Map::new();
        let mut headers = Map::new();
        headers.insert(
            "X-Request-Id".into(),
            json!({"$ref": "#/components/headers/XRequestId"}),
        );
        if op == Operation::CreateToken {
            headers.insert(
                "X-Subject-Token".into(),
                json!({
                    "description": "The token: send it as X-Auth-Token.",
                    "required": true,
                    "schema": {"type": "string"},
                }),
            );
        }
        let mut success = Map::new();
        success.insert("description".into(), json!(spec.success.description));
        success.insert("headers".into(), Value::Object(headers));
        if let Some(schema) = spec.success.schema {
            success.insert(
                "content".into(),
                json!({"application/json": {"schema": schema(&mut responses_gen)}}),
            );
        }
        if let Some((_, media, what)) = BINARY_BODIES.iter().find(|(o, _, _)| *o == op) {
            success.insert(
                "content".into(),
                json!({*media: {"schema": {"type": "string", "contentMediaType": media, "description": what}}}),
            );
        }
        responses.insert(spec.success.status.to_string(), Value::Object(success));
        for (status, response) in error_responses(op, spec.errors) {
            responses.insert(status.to_string(), response);
        }
        operation.insert("responses".into(), Value::Object(responses));
        operation.insert("security".into(), security(op));
        paths
            .entry(op.path())
            .or_default()
            .insert(method_key(op.method()).into(), Value::Object(operation));
    }
    let mut schemas = responses_gen.take_definitions(true);
    for (name, body) in bodies {
        schemas.insert(name, body);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "OpenSCM",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "A self-hostable certificate manager speaking the Huawei Cloud SCM API.",
            "description": "Every route OpenSCM serves, generated from its operation table and wire types. \
                Requests are authenticated with an SDK-HMAC-SHA256 signature (Authorization + X-Sdk-Date, as the \
                official Huawei SDKs sign) or a bearer token from POST /v3/auth/tokens sent as X-Auth-Token. \
                Enum values are listed as spelled; where the server trims a value, surrounding spaces are accepted too. \
                Every answer carries X-Request-Id; every error answer is {\"error_code\", \"error_msg\"}. \
                Any path that matches no route answers 404 APIGW.0101; a route's other methods answer 405 APIGW.0105.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": Group::ALL.iter().map(|g| json!({"name": g.name(), "description": g.description()})).collect::<Vec<_>>(),
        "paths": paths,
        "components": {
            "schemas": schemas,
            "headers": {
                "XRequestId": {
                    "description": "The request id (also in the server's log): 32 lower-case hex characters. \
                        Absent only from the raw 503 sent to a connection over the cap.",
                    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                },
                "RetryAfter": {
                    "description": "Seconds until the account may send again.",
                    "required": true,
                    "schema": {"type": "integer", "minimum": 1},
                },
            },
            "securitySchemes": {
                "sdkHmacSha256": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<list>, Signature=<hex>` \
                        with the request time in `X-Sdk-Date: YYYYMMDDTHHMMSSZ` (within 15 minutes of the server's \
                        clock), as the official Huawei SDKs sign: HMAC-SHA256 with the SK over the canonical request \
                        (method, path with a trailing slash, sorted query, signed headers, SHA-256 of the body).",
                },
                "authToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Auth-Token",
                    "description": "A bearer token from `POST /v3/auth/tokens` (its X-Subject-Token header).",
                },
            },
        },
    })
}

/// The document as committed in `docs/openapi.json`: pretty JSON, keys sorted, one trailing
/// newline.
pub fn render() -> String {
    let mut text = serde_json::to_string_pretty(&sorted(document())).unwrap_or_default();
    text.push('\n');
    text
}

/// The rendered document, built once (what `GET /openapi.json` answers).
pub(crate) fn served() -> &'static str {
    static DOC: LazyLock<String> = LazyLock::new(render);
    &DOC
}

/// `value` with the keys of every object sorted (whatever order serde_json's map keeps).
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let ordered: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(ordered.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every operation of the table is in the document with its method and path, and nothing else
    /// is.
    #[test]
    fn every_operation_is_described_and_nothing_else() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        let mut described = BTreeSet::new();
        for (path, item) in paths {
            for (method, operation) in item.as_object().unwrap() {
                let id = operation["operationId"].as_str().unwrap().to_owned();
                assert!(
                    described.insert((method.clone(), path.clone(), id.clone())),
                    "{id} twice"
                );
            }
        }
        let table: BTreeSet<(String, String, String)> = Operation::ALL
            .iter()
            .map(|op| {
                (
                    method_key(op.method()).to_owned(),
                    op.path().to_owned(),
                    op.name().to_owned(),
                )
            })
            .collect();
        assert_eq!(described, table);
    }

    /// The committed `docs/openapi.json` is what the code generates.
    #[test]
    fn the_committed_document_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let generated = render();
        if std::env::var_os("OPENSCM_BLESS").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is not what the code generates: regenerate it with \
             `cargo run -p openscm -- openapi > docs/openapi.json` \
             (or `OPENSCM_BLESS=1 cargo test -p scm-api openapi`)"
        );
    }

    #[test]
    fn every_reference_resolves_and_bodies_do_not_shadow_responses() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for piece in text.split("\"$ref\":\"").skip(1) {
            let target = piece.split('"').next().unwrap();
            let pointer = target.strip_prefix('#').unwrap();
            assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
        }
        // A request body's name must not be a response schema's (it would replace it).
        let mut g = response_generator();
        for &op in Operation::ALL {
            if let Some(s) = spec(op).success.schema {
                s(&mut g);
            }
        }
        schema::<ErrorBody>(&mut g);
        let responses = g.take_definitions(true);
        for &op in Operation::ALL {
            if let Body::Json { name, .. } = spec(op).body {
                assert!(
                    !responses.contains_key(name),
                    "{name} is a response schema too"
                );
                assert!(schemas.contains_key(name));
            }
        }
    }

    #[test]
    fn schemas_follow_the_serde_attributes_and_the_limits() {
        let doc = document();
        let s = &doc["components"]["schemas"];
        // `type` is renamed; unset values of a shown certificate are emitted as null.
        let show = &s["ShowCertificateResponse"];
        assert!(show["properties"]["type"].is_object());
        assert!(show["properties"].get("cert_type").is_none());
        assert_eq!(
            show["properties"]["order_id"]["type"],
            json!(["string", "null"])
        );
        assert!(
            show["required"]
                .as_array()
                .unwrap()
                .contains(&json!("order_id"))
        );
        // Request fields the parser requires are required and not nullable; optional ones may be
        // absent or null.
        let buy = &s["PurchaseBody"];
        assert!(
            buy["required"]
                .as_array()
                .unwrap()
                .contains(&json!("cert_brand"))
        );
        assert_eq!(buy["properties"]["cert_brand"]["type"], json!("string"));
        assert_eq!(buy["properties"]["order_number"]["maximum"], json!(100));
        assert_eq!(
            s["V2PurchaseBody"]["properties"]["order_number"]["maximum"],
            json!(1000)
        );
        assert_eq!(
            s["V2PurchaseBody"]["properties"]["cert_type"]["enum"],
            json!(["OV_SSL_CERT", "EV_SSL_CERT"])
        );
        assert!(!buy["required"].as_array().unwrap().contains(&json!("tags")));
        assert_eq!(buy["properties"]["tags"]["maxItems"], json!(10));
        assert_eq!(
            s["BatchTagsBody"]["properties"]["tags"]["items"]["properties"]["key"]["maxLength"],
            json!(128)
        );
        // The query of the list: parameters, never null.
        let list = &doc["paths"]["/v3/scm/certificates"]["get"]["parameters"];
        let limit = list
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .unwrap();
        assert_eq!(limit["schema"]["type"], json!("integer"));
        assert_eq!(limit["schema"]["minimum"], json!(10));
        // The error body: every code.
        assert_eq!(
            s["ErrorBody"]["properties"]["error_code"]["enum"]
                .as_array()
                .unwrap()
                .len(),
            ErrorCode::ALL.len()
        );
    }

    #[test]
    fn statuses_are_those_the_handlers_answer() {
        let doc = document();
        let responses = |op: Operation| {
            doc["paths"][op.path()][method_key(op.method())]["responses"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert!(responses(Operation::CreateToken).contains(&"201".to_owned()));
        assert!(responses(Operation::PushCertificate).contains(&"204".to_owned()));
        assert!(responses(Operation::DeleteCertificate).contains(&"204".to_owned()));
        assert_eq!(responses(Operation::Health), ["200", "503"]);
        for op in [
            Operation::V2PurchaseCertificate,
            Operation::V2ListPushHistory,
        ] {
            assert!(responses(op).contains(&"403".to_owned()), "{op}");
        }
        let show = responses(Operation::ShowCertificate);
        for s in [
            "200", "400", "401", "404", "405", "408", "413", "429", "500", "503",
        ] {
            assert!(show.contains(&s.to_owned()), "{s}");
        }
    }
}
