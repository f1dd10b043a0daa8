//! The console's HTML, rendered on the server. Every value that goes into a page passes through
//! [`escape`] (text and attribute values alike) or, in a link, through [`query_value`] first.

use std::fmt::Write as _;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use scm_core::service::console::{ExpiryWeek, Timeline};
use scm_proto::CertificateStatus;
use scm_store::{CertificateRecord, ListQuery, PushRecord, SortKey, TagRecord};

/// `&`, `<`, `>`, `"` and `'` as character references: safe in element text and in quoted
/// attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Unreserved characters stay; everything else of a query value is percent-encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A query-string value, percent-encoded (then still to be escaped for HTML).
pub(crate) fn query_value(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// `yyyy-mm-dd hh:mm UTC` of a Unix time in ms.
pub(crate) fn datetime(ms: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| "—".into())
}

/// `yyyy-mm-dd` of a Unix time in ms.
pub(crate) fn date(ms: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| "—".into())
}

/// The signed-in part of every page: who, and the sign-out form (with its CSRF token).
pub(crate) struct Chrome<'a> {
    /// The account's name.
    pub account: &'a str,
    /// The account's id (in the name's tooltip, for support).
    pub account_id: &'a str,
    /// The access key signed in with.
    pub access_key: &'a str,
    /// The session's CSRF token.
    pub csrf: &'a str,
}

/// A whole page: skip link, header and navigation (when signed in), `main`.
pub(crate) fn page(title: &str, chrome: Option<&Chrome<'_>>, main: &str) -> String {
    let mut h = String::with_capacity(main.len() + 2048);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · OpenSCM</title>\
         <link rel=\"stylesheet\" href=\"/console/static/console.css\"></head><body>\
         <a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header><span class=\"brand\">OpenSCM</span>",
        escape(title)
    );
    if let Some(c) = chrome {
        let _ = write!(
            h,
            "<nav aria-label=\"Console\"><a href=\"/console/certificates\">Certificates</a>\
             <a href=\"/console/timeline\">Expiry timeline</a>\
             <a href=\"/console/ca-root.pem\" download>Download this account's root</a></nav>\
             <form class=\"signout\" method=\"post\" action=\"/console/sign-out\">\
             <span class=\"who\"><span class=\"account\" title=\"Account ID {}\">{}</span> · {}</span>\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">Sign out</button></form>",
            escape(c.account_id),
            escape(c.account),
            escape(c.access_key),
            escape(c.csrf)
        );
    }
    let _ = writeln!(
        h,
        "</header><main id=\"main\" tabindex=\"-1\">{main}</main></body></html>"
    );
    h
}

/// The sign-in form, with a refusal message when there was one.
pub(crate) fn sign_in(message: Option<&str>, form_token: &str) -> String {
    let mut m = String::from("<h1>Sign in</h1>");
    if let Some(msg) = message {
        let _ = write!(m, "<p class=\"error\" role=\"alert\">{}</p>", escape(msg));
    }
    let _ = write!(
        m,
        "<form class=\"signin\" method=\"post\" action=\"/console/sign-in\">\
         <input type=\"hidden\" name=\"login_csrf\" value=\"{}\">",
        escape(form_token)
    );
    m.push_str(
        "\
         <label for=\"access_key\">Access key</label>\
         <input id=\"access_key\" name=\"access_key\" autocomplete=\"username\" required \
          spellcheck=\"false\" autocapitalize=\"none\">\
         <label for=\"secret_key\">Secret key</label>\
         <input id=\"secret_key\" name=\"secret_key\" type=\"password\" \
          autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form>\
         <p class=\"hint\">Use an access key and secret key of your account \
         (e.g. those of <code>credentials.json</code>).</p>",
    );
    page("Sign in", None, &m)
}

/// The API spelling of a sort key (the console takes the list API's parameters).
fn sort_name(k: SortKey) -> &'static str {
    match k {
        SortKey::ExpiredTime => "certExpiredTime",
        SortKey::Status => "certStatus",
        SortKey::UpdateTime => "certUpdateTime",
    }
}

/// The query string of an inventory page for `q` at `offset`.
pub(crate) fn inventory_href(q: &ListQuery, offset: u32) -> String {
    let mut s = String::from("/console/certificates?");
    let mut add = |k: &str, v: &str| {
        if !s.ends_with('?') {
            s.push('&');
        }
        let _ = write!(s, "{k}={}", query_value(v));
    };
    if let Some(c) = &q.content {
        add("content", c);
    }
    if let Some(st) = q.status {
        add("status", st.as_str());
    }
    add("sort_key", sort_name(q.sort_key));
    add("sort_dir", if q.ascending { "ASC" } else { "DESC" });
    if let Some((from, before)) = q.expires_within {
        add("expires_from", &from.to_string());
        add("expires_before", &before.to_string());
    }
    add("limit", &q.limit.to_string());
    add("offset", &offset.to_string());
    s
}

/// When a certificate expires, or a dash.
fn expiry(c: &CertificateRecord) -> String {
    c.issued
        .as_ref()
        .map_or_else(|| "—".into(), |i| date(i.not_after_ms))
}

/// Who issued a certificate: the account's built-in CA, an ACME CA (the issuer's name in the
/// configuration), or no one OpenSCM knows ("imported"; with `detailed`, the issuer's DN).
pub(crate) fn issued_by(c: &CertificateRecord, detailed: bool) -> String {
    if c.is_imported() {
        return match (&c.issuer, detailed) {
            (Some(dn), true) if !dn.is_empty() => format!("imported (issuer {dn})"),
            _ => "imported".to_owned(),
        };
    }
    let Some(i) = &c.issued else {
        return "—".to_owned();
    };
    match scm_core::issuers::acme_issuer_of(i.ca_id.as_deref()) {
        Some(name) if detailed => format!("ACME CA \u{201c}{name}\u{201d}"),
        Some(name) => format!("ACME: {name}"),
        None if detailed => "the built-in CA (this account's own CA)".to_owned(),
        None => "built-in CA".to_owned(),
    }
}

/// Days before its end from which a certificate is highlighted as expiring (as cert-manager's
/// and most monitoring's default warning: a 90-day certificate renewed at two thirds is never
/// highlighted, one whose renewal is failing is for its last month).
pub(crate) const EXPIRING_DAYS: i64 = 30;

const DAY_MS: i64 = 86_400_000;

/// Whether a certificate needs attention for its expiry: its highlight's class and words, or
/// `None`. A revoked certificate or one not issued yet has no expiry to worry about.
pub(crate) fn urgency(c: &CertificateRecord, now_ms: i64) -> Option<(&'static str, String)> {
    if c.status == CertificateStatus::Revoked {
        return None;
    }
    let left = c.issued.as_ref()?.not_after_ms - now_ms;
    if left <= 0 {
        return Some(("expired", "expired".to_owned()));
    }
    if left > EXPIRING_DAYS * DAY_MS {
        return None;
    }
    let words = match left / DAY_MS {
        0 => "expires within a day".to_owned(),
        1 => "expires in 1 day".to_owned(),
        n => format!("expires in {n} days"),
    };
    Some(("expiring", words))
}

/// The inventory's window of what expires within [`EXPIRING_DAYS`] from now (expired ones not).
pub(crate) fn expiring_href(now_ms: i64) -> String {
    let q = ListQuery {
        expires_within: Some((now_ms, now_ms + EXPIRING_DAYS * DAY_MS)),
        sort_key: SortKey::ExpiredTime,
        ascending: true,
        limit: 20,
        ..ListQuery::default()
    };
    inventory_href(&q, 0)
}

/// The inventory: search form, table, pager.
pub(crate) fn inventory(
    chrome: &Chrome<'_>,
    q: &ListQuery,
    certs: &[CertificateRecord],
    total: u64,
    now_ms: i64,
) -> String {
    let mut m = String::from("<h1>Certificates</h1>");
    let _ = write!(
        m,
        "<form class=\"filters\" method=\"get\" action=\"/console/certificates\" role=\"search\">\
         <div><label for=\"content\">Search names and domains</label>\
         <input id=\"content\" name=\"content\" type=\"search\" value=\"{}\"></div>\
         <div><label for=\"status\">Status</label><select id=\"status\" name=\"status\">\
         <option value=\"ALL\">All</option>",
        escape(q.content.as_deref().unwrap_or(""))
    );
    for st in CertificateStatus::ALL {
        let _ = write!(
            m,
            "<option value=\"{0}\"{1}>{0}</option>",
            st.as_str(),
            if q.status == Some(st) {
                " selected"
            } else {
                ""
            }
        );
    }
    m.push_str("</select></div><div><label for=\"sort_key\">Sort by</label><select id=\"sort_key\" name=\"sort_key\">");
    for (k, label) in [
        (SortKey::UpdateTime, "Last change"),
        (SortKey::ExpiredTime, "Expiry"),
        (SortKey::Status, "Status"),
    ] {
        let _ = write!(
            m,
            "<option value=\"{}\"{}>{label}</option>",
            sort_name(k),
            if q.sort_key == k { " selected" } else { "" }
        );
    }
    let _ = write!(
        m,
        "</select></div><div><label for=\"sort_dir\">Order</label><select id=\"sort_dir\" name=\"sort_dir\">\
         <option value=\"DESC\"{}>Descending</option><option value=\"ASC\"{}>Ascending</option></select></div>",
        if q.ascending { "" } else { " selected" },
        if q.ascending { " selected" } else { "" }
    );
    if let Some((from, before)) = q.expires_within {
        let _ = write!(
            m,
            "<input type=\"hidden\" name=\"expires_from\" value=\"{from}\">\
             <input type=\"hidden\" name=\"expires_before\" value=\"{before}\">"
        );
    }
    let _ = write!(
        m,
        "<input type=\"hidden\" name=\"limit\" value=\"{}\"><button type=\"submit\">Apply</button></form>",
        q.limit
    );
    if let Some((from, before)) = q.expires_within {
        let clear = ListQuery {
            expires_within: None,
            ..q.clone()
        };
        let _ = write!(
            m,
            "<p class=\"window\">Expiring from {} to {} (exclusive). <a href=\"{}\">Show all expiry dates</a></p>",
            escape(&datetime(from)),
            escape(&datetime(before)),
            escape(&inventory_href(&clear, 0))
        );
    } else {
        let _ = write!(
            m,
            "<p class=\"window\">Rows <span class=\"due expiring\">expiring</span> end within \
             {EXPIRING_DAYS} days, <span class=\"due expired\">expired</span> ones have ended. \
             <a id=\"expiring-link\" href=\"{}\">Show those expiring within {EXPIRING_DAYS} days</a></p>",
            escape(&expiring_href(now_ms))
        );
    }
    let first = if total == 0 {
        0
    } else {
        u64::from(q.offset) + 1
    };
    let last = u64::from(q.offset) + certs.len() as u64;
    // "No certificates", "1 certificate", "1–10 of 11 certificates": no "0–0 of 0".
    let caption = match total {
        0 => "No certificates".to_owned(),
        1 if first == 1 => "1 certificate".to_owned(),
        _ => format!("{first}–{last} of {total} certificates"),
    };
    let _ = write!(
        m,
        "<div class=\"table-wrap\"><table id=\"inventory\"><caption>{caption}</caption>\
         <thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Domain</th>\
         <th scope=\"col\">Status</th><th scope=\"col\">Expires</th>\
         <th scope=\"col\" class=\"wide\">Issued by</th>\
         <th scope=\"col\" class=\"wide\">Last change</th></tr></thead><tbody>"
    );
    for c in certs {
        let domain = c.application.as_ref().map_or("—", |a| a.domain.as_str());
        let (row_class, due) = match urgency(c, now_ms) {
            Some((class, words)) => (
                format!(" class=\"{class}\""),
                format!("<span class=\"due {class}\">{}</span>", escape(&words)),
            ),
            None => (String::new(), String::new()),
        };
        let _ = write!(
            m,
            "<tr{row_class}><th scope=\"row\"><a href=\"/console/certificates/{}\">{}</a><span class=\"id\">{}</span></th>\
             <td>{}</td><td><span class=\"status s-{}\">{}</span></td><td>{}{due}</td>\
             <td class=\"wide\">{}</td><td class=\"wide\">{}</td></tr>",
            escape(&query_value(c.id.as_str())),
            escape(&c.name),
            escape(c.id.as_str()),
            escape(domain),
            escape(&c.status.as_str().to_lowercase()),
            escape(c.status.as_str()),
            escape(&expiry(c)),
            escape(&issued_by(c, false)),
            escape(&datetime(c.updated_ms)),
        );
    }
    if certs.is_empty() {
        m.push_str("<tr><td colspan=\"6\">No certificate matches.</td></tr>");
    }
    m.push_str("</tbody></table></div><nav class=\"pager\" aria-label=\"Pages\">");
    if q.offset > 0 {
        let prev = q.offset.saturating_sub(q.limit);
        let _ = write!(
            m,
            "<a rel=\"prev\" href=\"{}\">Previous page</a>",
            escape(&inventory_href(q, prev))
        );
    }
    if last < total {
        let _ = write!(
            m,
            "<a rel=\"next\" href=\"{}\">Next page</a>",
            escape(&inventory_href(q, q.offset.saturating_add(q.limit)))
        );
    }
    m.push_str("</nav>");
    page("Certificates", Some(chrome), &m)
}

/// One certificate of a chain, as the details page shows it.
pub(crate) struct ChainEntry {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Validity end.
    pub not_after_ms: i64,
    /// Key algorithm, when known.
    pub key_algorithm: Option<String>,
}

/// What the details page shows beyond the record.
pub(crate) struct Details<'a> {
    /// The certificate.
    pub cert: &'a CertificateRecord,
    /// Leaf first, then the intermediates.
    pub chain: &'a [ChainEntry],
    /// Every delivery attempt, newest first.
    pub pushes: &'a [PushRecord],
    /// Where it is deployed, per target, with the target's kind (`None`: no longer configured).
    pub deployments: &'a [(scm_store::DeploymentRecord, Option<&'static str>)],
    /// By key.
    pub tags: &'a [TagRecord],
    /// Newest first.
    pub versions: &'a [scm_store::VersionRecord],
    /// Oldest first.
    pub events: &'a [scm_store::EventRecord],
    /// The proofs of control the account must publish (a validation is pending).
    pub proofs: &'a [scm_core::lifecycle::validation::Proof],
    /// The reminder kinds turned off for it (`CERT_EXPIRING`, `CERT_EXPIRED`).
    pub reminders_off: &'a [String],
    /// The account's configured push targets, by name.
    pub targets: &'a [&'a str],
    /// Now (Unix ms), for what expires soon.
    pub now_ms: i64,
}

fn row(m: &mut String, label: &str, value: &str) {
    let _ = write!(m, "<dt>{}</dt><dd>{}</dd>", escape(label), escape(value));
}

/// A certificate's details: names, validity, chain, key, push history, tags, export.
pub(crate) fn details(chrome: &Chrome<'_>, d: &Details<'_>) -> String {
    let c = d.cert;
    let now_ms = d.now_ms;
    let mut m = String::new();
    let _ = write!(
        m,
        "<p class=\"crumbs\"><a href=\"/console/certificates\">Certificates</a></p><h1>{}</h1><dl class=\"facts\">",
        escape(&c.name)
    );
    row(&mut m, "Certificate ID", c.id.as_str());
    row(&mut m, "Status", c.status.as_str());
    // Brand and type as the API shows them (the same functions): an imported certificate was
    // bought from no one, so it has no type, and a brand only when its chain was verified.
    let none = || "—".to_owned();
    row(
        &mut m,
        "Brand",
        &crate::views::brand(c).unwrap_or_else(none),
    );
    row(
        &mut m,
        "Type",
        &crate::views::cert_type(c).unwrap_or_else(none),
    );
    row(&mut m, "Domain type", c.product.domain_type.as_str());
    row(&mut m, "Issued by", &issued_by(c, true));
    if c.is_imported() {
        let trust = match &c.chain_trust {
            Some(t) if t.trusted => format!("trusted: {}", t.note),
            Some(t) => format!("not trusted: {}", t.note),
            None => "not verified (imported before OpenSCM verified chains)".to_owned(),
        };
        row(&mut m, "Chain trust", &trust);
    }
    let app = c.application.as_ref();
    row(&mut m, "Domain", app.map_or("—", |a| a.domain.as_str()));
    m.push_str("<dt>Names (subject alternative names)</dt><dd>");
    let names = leaf_names(c);
    if names.is_empty() {
        m.push('—');
    } else {
        m.push_str("<ul class=\"names\">");
        for n in &names {
            let _ = write!(m, "<li>{}</li>", escape(n));
        }
        m.push_str("</ul>");
    }
    m.push_str("</dd>");
    let key = d
        .chain
        .first()
        .and_then(|e| e.key_algorithm.clone())
        .or_else(|| app.and_then(|a| a.key_algorithm.clone()))
        .unwrap_or_else(|| "—".into());
    row(&mut m, "Key algorithm", &key);
    if let Some(i) = &c.issued {
        row(&mut m, "Signature algorithm", &i.signature_algorithm);
        row(&mut m, "Valid from", &datetime(i.not_before_ms));
        let _ = write!(
            m,
            "<dt>Valid until</dt><dd id=\"valid-until\">{}",
            escape(&datetime(i.not_after_ms))
        );
        if let Some((class, words)) = urgency(c, now_ms) {
            let _ = write!(m, " <span class=\"due {class}\">{}</span>", escape(&words));
        }
        m.push_str("</dd>");
        row(&mut m, "Serial number", &i.serial_hex);
        row(&mut m, "SHA-1 fingerprint", &i.fingerprint);
    }
    if let Some(r) = &c.revocation {
        row(&mut m, "Revoked", &datetime(r.revoked_ms));
        row(&mut m, "Revocation reason", &r.reason);
    }
    row(&mut m, "Created", &datetime(c.created_ms));
    row(&mut m, "Last change", &datetime(c.updated_ms));
    m.push_str("</dl>");

    m.push_str("<h2 id=\"chain\">Chain</h2>");
    if d.chain.is_empty() {
        m.push_str("<p>Not issued yet.</p>");
    } else {
        m.push_str(
            "<div class=\"table-wrap\"><table><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Subject</th>\
             <th scope=\"col\">Issuer</th><th scope=\"col\">Valid until</th><th scope=\"col\">Key</th></tr></thead><tbody>",
        );
        for (i, e) in d.chain.iter().enumerate() {
            let _ = write!(
                m,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                i,
                escape(&e.subject),
                escape(&e.issuer),
                escape(&date(e.not_after_ms)),
                escape(e.key_algorithm.as_deref().unwrap_or("—"))
            );
        }
        m.push_str("</tbody></table></div>");
    }

    versions_section(&mut m, chrome, d);

    deployments_section(&mut m, chrome, d);

    m.push_str("<h2 id=\"pushes\">Delivery history</h2>");
    if d.pushes.is_empty() {
        m.push_str("<p>Never pushed.</p>");
    } else {
        m.push_str(
            "<div class=\"table-wrap\"><table id=\"push-history\"><thead><tr><th scope=\"col\">When</th>\
             <th scope=\"col\">Target</th><th scope=\"col\">Service</th><th scope=\"col\">Region</th>\
             <th scope=\"col\">Version</th><th scope=\"col\">Attempt</th>\
             <th scope=\"col\">Outcome</th><th scope=\"col\">Served</th><th scope=\"col\">Detail</th></tr></thead><tbody>",
        );
        for p in d.pushes {
            let _ = write!(
                m,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&datetime(p.pushed_ms)),
                escape(&p.targets.replace(';', ", ")),
                escape(&p.service),
                escape(p.region.as_deref().unwrap_or("global")),
                p.version.map(|v| v.to_string()).unwrap_or_default(),
                p.attempt,
                escape(p.outcome.as_str()),
                if p.verified { "yes" } else { "no" },
                escape(&p.detail)
            );
        }
        m.push_str("</tbody></table></div>");
    }

    m.push_str("<h2 id=\"tags\">Tags</h2>");
    if d.tags.is_empty() {
        m.push_str("<p>No tags.</p>");
    } else {
        m.push_str("<div class=\"table-wrap\"><table id=\"tags-table\"><thead><tr><th scope=\"col\">Key</th><th scope=\"col\">Value</th></tr></thead><tbody>");
        for t in d.tags {
            let _ = write!(
                m,
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(&t.key),
                escape(&t.value)
            );
        }
        m.push_str("</tbody></table></div>");
    }

    m.push_str("<h2 id=\"export\">Export</h2>");
    if c.issued.is_some() && c.status.is_deployable() {
        let _ = write!(
            m,
            "<form method=\"post\" action=\"/console/certificates/{}/export\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\" id=\"export-button\">Download PEM (certificate, chain and key)</button></form>\
             <p class=\"hint\">One <code>.pem</code> file: the certificate, its chain, then the private key when the server holds it.</p>",
            escape(&query_value(c.id.as_str())),
            escape(chrome.csrf)
        );
    } else {
        let _ = write!(
            m,
            "<p>A certificate in status {} cannot be exported.</p>",
            escape(c.status.as_str())
        );
    }
    reminders_section(&mut m, chrome, d);
    // --- revocation ---
    if revocable(c) {
        let _ = write!(
            m,
            "<h2 id=\"revoke\">Revoke</h2><p><a href=\"/console/certificates/{}/revoke\" \
             id=\"revoke-link\">Revoke this certificate…</a></p>\
             <p class=\"hint\">Asks for a reason and a confirmation first.</p>",
            escape(&query_value(c.id.as_str()))
        );
    }
    if removable(c, now_ms) {
        let _ = write!(
            m,
            "<h2 id=\"delete\">Delete</h2><p><a href=\"/console/certificates/{}/delete\" \
             id=\"delete-link\">Delete this certificate…</a></p>\
             <p class=\"hint\">Asks for a confirmation first.</p>",
            escape(&query_value(c.id.as_str()))
        );
    }
    page(&c.name, Some(chrome), &m)
}

/// The expiry reminders of a certificate (`EnableNotification` / `DisableNotification`): which
/// are on, and one switch for both.
fn reminders_section(m: &mut String, chrome: &Chrome<'_>, d: &Details<'_>) {
    let c = d.cert;
    if c.issued.is_none() {
        return;
    }
    let off = |kind: &str| d.reminders_off.iter().any(|k| k == kind);
    let (expiring, expired) = (!off("CERT_EXPIRING"), !off("CERT_EXPIRED"));
    let state = match (expiring, expired) {
        (true, true) => "On: before it expires (CERT_EXPIRING) and when it has (CERT_EXPIRED).",
        (true, false) => "Only before it expires (CERT_EXPIRING); not when it has.",
        (false, true) => "Only when it has expired (CERT_EXPIRED); not before.",
        (false, false) => "Off: no one is reminded that it expires.",
    };
    let turn_on = !(expiring && expired);
    let _ = write!(
        m,
        "<h2 id=\"reminders\">Expiry reminders</h2><p id=\"reminders-state\">{}</p>\
         <form method=\"post\" action=\"/console/certificates/{}/reminders\" class=\"inline\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"reminders\" value=\"{}\">\
         <button type=\"submit\" id=\"reminders-button\">{}</button></form>\
         <p class=\"hint\">Reminders go to the notifiers the server has for the account \
         (webhooks, mail).</p>",
        escape(state),
        escape(&query_value(c.id.as_str())),
        escape(chrome.csrf),
        if turn_on { "on" } else { "off" },
        if turn_on {
            "Turn expiry reminders on"
        } else {
            "Turn expiry reminders off"
        }
    );
}

/// Whether the console offers to delete `c`: the statuses `DeleteCertificate` takes, and a
/// certificate bought but not issued (which `UnsubscribeCertificate` removes). Under review it
/// offers neither, although the API would unsubscribe: the console asks to withdraw the
/// application first (`CancelCertificateRequest`), so a deletion never races a validation.
pub(crate) fn removable(c: &CertificateRecord, now_ms: i64) -> bool {
    use scm_core::service::lifecycle::{cancellable, deletable, unsubscribable};
    let shown = c.status_at(now_ms);
    deletable(shown) || (!c.is_imported() && unsubscribable(shown) && !cancellable(shown))
}

/// The confirmation step of a deletion: what goes, and a box to tick.
pub(crate) fn delete_form(
    chrome: &Chrome<'_>,
    c: &CertificateRecord,
    problem: Option<&str>,
) -> String {
    confirmation(
        chrome,
        c,
        problem,
        &Confirmation {
            verb: "Delete",
            meaning: "<strong>Deletion cannot be undone.</strong> The certificate, its private \
                      key, its versions and its push history are removed from OpenSCM, and it is \
                      no longer renewed or pushed. Servers it was pushed to keep serving it until \
                      they are given another; it is not revoked (revoke it first if its key may \
                      be compromised).",
            fields: "",
            class: "danger",
        },
    )
}

/// Where the certificate is deployed: per target, what it holds and whether it serves it, with
/// a button that pushes the current version to that target again.
fn deployments_section(m: &mut String, chrome: &Chrome<'_>, d: &Details<'_>) {
    m.push_str("<h2 id=\"deployments\">Deployments</h2>");
    let id = escape(&query_value(d.cert.id.as_str()));
    let csrf = escape(chrome.csrf);
    let pushable = d.cert.issued.is_some() && d.cert.status.is_deployable();
    if pushable && !d.targets.is_empty() {
        // Any configured target of the account, deployed to or not (the CLI's `cert push --target`).
        let _ = write!(
            m,
            "<form method=\"post\" action=\"/console/certificates/{id}/push-target\" class=\"push-to\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label for=\"push-target\">Push the current version to</label>\
             <select id=\"push-target\" name=\"target\">"
        );
        for t in d.targets {
            let _ = write!(m, "<option>{}</option>", escape(t));
        }
        m.push_str(
            "</select> <button type=\"submit\" id=\"push-target-button\">Push</button></form>",
        );
    }
    let live = d.deployments.iter().filter(|(_, k)| k.is_some()).count();
    if pushable && live > 0 {
        let _ = write!(
            m,
            "<form method=\"post\" action=\"/console/certificates/{id}/push-all\" class=\"inline\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\" id=\"push-all-button\">Push again to every target it is deployed to ({live})</button></form>"
        );
    }
    if d.deployments.is_empty() {
        m.push_str("<p>Not deployed to any push target.</p>");
        return;
    }
    m.push_str(
        "<div class=\"table-wrap\"><table id=\"deployments-table\"><thead><tr><th scope=\"col\">Target</th>\
         <th scope=\"col\">Kind</th><th scope=\"col\">State</th><th scope=\"col\">Version</th>\
         <th scope=\"col\">Served serial</th><th scope=\"col\">Problem</th><th scope=\"col\"></th></tr></thead><tbody>",
    );
    for (dep, kind) in d.deployments {
        let state = match dep.state() {
            "not_served" => "delivered, not served",
            other => other,
        };
        let button = if kind.is_some() && pushable {
            format!(
                "<form method=\"post\" action=\"/console/certificates/{id}/push-target\" class=\"inline\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <input type=\"hidden\" name=\"target\" value=\"{}\">\
                 <button type=\"submit\">Push again</button></form>",
                escape(&dep.target)
            )
        } else {
            String::new()
        };
        let _ = write!(
            m,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{button}</td></tr>",
            escape(&dep.target),
            escape(kind.unwrap_or("(removed)")),
            state,
            dep.version,
            escape(dep.served_serial.as_deref().unwrap_or("")),
            escape(dep.last_error.as_deref().unwrap_or("")),
        );
    }
    m.push_str("</tbody></table></div>");
}

/// Proofs pending, versions, renewal (state, button, switch) and the history of state changes.
fn versions_section(m: &mut String, chrome: &Chrome<'_>, d: &Details<'_>) {
    let c = d.cert;
    if !d.proofs.is_empty() {
        m.push_str(
            "<h2 id=\"validation\">Domain validation</h2><p>Publish these to prove control of the \
             names; OpenSCM checks by itself and issues when every one is found.</p>\
             <div class=\"table-wrap\"><table id=\"proofs\"><thead><tr><th scope=\"col\">Name</th>\
             <th scope=\"col\">Type</th><th scope=\"col\">Record or URL</th><th scope=\"col\">Value</th>\
             </tr></thead><tbody>",
        );
        for p in d.proofs {
            let _ = write!(
                m,
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                escape(&p.domain),
                escape(&p.record_type),
                escape(&p.record_name),
                escape(&p.record_value)
            );
        }
        m.push_str("</tbody></table></div>");
    }
    m.push_str("<h2 id=\"versions\">Versions and renewal</h2>");
    if !c.is_imported() && c.lifecycle.current_version.is_some() {
        let state = match (c.lifecycle.auto_renew, c.lifecycle.renew_at_ms) {
            (true, Some(at)) => format!("Renewed automatically, next from {}.", datetime(at)),
            (true, None) => "Renewed automatically.".to_owned(),
            (false, _) => "Automatic renewal is off.".to_owned(),
        };
        let id = escape(&query_value(c.id.as_str()));
        let csrf = escape(chrome.csrf);
        let _ = write!(
            m,
            "<p id=\"renewal-state\">{}</p><form method=\"post\" action=\"/console/certificates/{id}/renew\" class=\"inline\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\" id=\"renew-button\">Renew now</button></form> \
             <form method=\"post\" action=\"/console/certificates/{id}/auto-renew\" class=\"inline\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"auto_renew\" value=\"{}\">\
             <button type=\"submit\" id=\"auto-renew-button\">{}</button></form>",
            escape(&state),
            if c.lifecycle.auto_renew { "off" } else { "on" },
            if c.lifecycle.auto_renew {
                "Turn automatic renewal off"
            } else {
                "Turn automatic renewal on"
            }
        );
    }
    if d.versions.is_empty() {
        m.push_str("<p>No versions: nothing issued yet (or imported).</p>");
    } else {
        m.push_str(
            "<div class=\"table-wrap\"><table id=\"versions-table\"><thead><tr><th scope=\"col\">Version</th>\
             <th scope=\"col\">Why</th><th scope=\"col\">Serial number</th><th scope=\"col\">Valid from</th>\
             <th scope=\"col\">Valid until</th><th scope=\"col\">Renewal due</th></tr></thead><tbody>",
        );
        for v in d.versions {
            let current = c.lifecycle.current_version == Some(v.seq);
            let _ = write!(
                m,
                "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                v.seq,
                if current { " (current)" } else { "" },
                escape(&v.reason),
                escape(&v.issued.serial_hex),
                escape(&datetime(v.issued.not_before_ms)),
                escape(&datetime(v.issued.not_after_ms)),
                escape(&v.renew_at_ms.map_or_else(|| "—".to_owned(), datetime))
            );
        }
        m.push_str("</tbody></table></div>");
    }
    m.push_str("<h2 id=\"history\">History</h2>");
    if d.events.is_empty() {
        m.push_str("<p>No recorded changes.</p>");
    } else {
        m.push_str(
            "<div class=\"table-wrap\"><table id=\"events-table\"><thead><tr><th scope=\"col\">When</th>\
             <th scope=\"col\">What</th><th scope=\"col\">Detail</th><th scope=\"col\">By</th></tr></thead><tbody>",
        );
        for e in d.events {
            let _ = write!(
                m,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&datetime(e.at_ms)),
                escape(&e.event),
                escape(&e.detail),
                escape(&e.actor)
            );
        }
        m.push_str("</tbody></table></div>");
    }
}

// --- revocation ---
/// Whether the console offers to revoke `c`: an issued certificate OpenSCM issued (the rule of
/// `Scm::revoke`, which decides).
pub(crate) fn revocable(c: &CertificateRecord) -> bool {
    c.status == CertificateStatus::Issued && !c.is_imported() && c.issued.is_some()
}

/// A confirmation page: which certificate, what the action means, a box to tick.
struct Confirmation {
    /// "Revoke", "Delete": the title's verb and the form's path (lower-cased).
    verb: &'static str,
    /// What it means (HTML: trusted text of ours, never a value).
    meaning: &'static str,
    /// Fields of the form before the box (HTML: trusted text of ours).
    fields: &'static str,
    /// The submit button's extra class (`danger`) or "".
    class: &'static str,
}

fn confirmation(
    chrome: &Chrome<'_>,
    c: &CertificateRecord,
    problem: Option<&str>,
    k: &Confirmation,
) -> String {
    let id = escape(&query_value(c.id.as_str()));
    let verb = k.verb;
    let path = verb.to_ascii_lowercase();
    let mut m = String::new();
    let _ = write!(
        m,
        "<p class=\"crumbs\"><a href=\"/console/certificates\">Certificates</a> › \
         <a href=\"/console/certificates/{id}\">{}</a></p><h1>{verb} {}</h1>",
        escape(&c.name),
        escape(&c.name)
    );
    if let Some(p) = problem {
        let _ = write!(
            m,
            "<p class=\"problem\" id=\"{path}-problem\">{}</p>",
            escape(p)
        );
    }
    let _ = write!(m, "<p>{}</p><dl class=\"facts\">", k.meaning);
    row(&mut m, "Certificate ID", c.id.as_str());
    row(&mut m, "Status", c.status.as_str());
    row(
        &mut m,
        "Domain",
        c.application.as_ref().map_or("—", |a| a.domain.as_str()),
    );
    if let Some(i) = &c.issued {
        row(&mut m, "Serial number", &i.serial_hex);
        row(&mut m, "Valid until", &datetime(i.not_after_ms));
    }
    let _ = write!(
        m,
        "</dl><form method=\"post\" action=\"/console/certificates/{id}/{path}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">{}\
         <p><input type=\"checkbox\" id=\"confirm\" name=\"confirm\" value=\"yes\" required> \
         <label for=\"confirm\">I understand that this cannot be undone</label></p>\
         <button type=\"submit\" id=\"{path}-button\" class=\"{}\">{verb} certificate</button> \
         <a href=\"/console/certificates/{id}\">Cancel</a></form>",
        escape(chrome.csrf),
        k.fields,
        k.class
    );
    page(&format!("{verb} {}", c.name), Some(chrome), &m)
}

/// The confirmation step of a revocation: what is revoked, what it means, a reason and a box to
/// tick; `problem` says why the last attempt was refused.
pub(crate) fn revoke_form(
    chrome: &Chrome<'_>,
    c: &CertificateRecord,
    problem: Option<&str>,
) -> String {
    confirmation(
        chrome,
        c,
        problem,
        &Confirmation {
            verb: "Revoke",
            meaning: "<strong>Revocation cannot be undone.</strong> The certificate's CA lists it \
                      on its CRL at once; clients that check revocation refuse it from then on, \
                      and it can no longer be exported or pushed.",
            fields: "<label for=\"reason\">Reason (at most 63 characters; e.g. keyCompromise, \
                     superseded)</label><input id=\"reason\" name=\"reason\" maxlength=\"63\" required>",
            class: "",
        },
    )
}

/// The names of a certificate: its domain, then the other SANs of its application.
fn leaf_names(c: &CertificateRecord) -> Vec<String> {
    let Some(a) = &c.application else {
        return Vec::new();
    };
    let mut out = vec![a.domain.clone()];
    for n in a.sans.split(';').filter(|s| !s.is_empty()) {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_owned());
        }
    }
    out
}

/// Width, height and margins of the timeline chart (SVG user units).
const CHART_W: i64 = 960;
const CHART_H: i64 = 336;
const LEFT: i64 = 48;
const BOTTOM: i64 = 72;
const TOP: i64 = 16;

/// The expiry timeline: a bar chart (inline SVG, each bar a link to its certificates) and the
/// same figures as a table.
pub(crate) fn timeline(chrome: &Chrome<'_>, t: &Timeline) -> String {
    let weeks = &t.bars;
    let span_weeks = t.weeks();
    let per = t.weeks_per_bar;
    let mut m = String::from("<h1>Expiry timeline</h1>");
    let _ = write!(
        m,
        "<p>Certificates of the account by the {} their validity ends, from the start of today \
         (UTC), over {span_weeks} weeks: at least 13 months, and up to the latest expiry the \
         account holds. Each bar leads to its certificates.</p>",
        if per == 1 {
            "week".to_owned()
        } else {
            format!("{per} weeks")
        }
    );
    let max = weeks.iter().map(|w| w.count).max().unwrap_or(0).max(1);
    let n = i64::try_from(weeks.len()).unwrap_or(1).max(1);
    let plot_w = CHART_W - LEFT - 8;
    let plot_h = CHART_H - TOP - BOTTOM;
    let slot = plot_w / n;
    let bar_w = (slot * 7 / 10).max(1);
    let total: u64 = weeks.iter().map(|w| w.count).sum();
    let (plural, verb) = if total == 1 { ("", "s") } else { ("s", "") };
    // `group`, not `img`: the children of an `img` (the bars' links) would be hidden from
    // assistive technology.
    let _ = write!(
        m,
        "<figure><svg id=\"timeline-chart\" viewBox=\"0 0 {CHART_W} {CHART_H}\" role=\"group\" \
         aria-labelledby=\"chart-title\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"chart-title\">{total} certificate{plural} expire{verb} in the next {span_weeks} weeks; the most in one bar: {max}</title>\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>\
         <text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{max}</text>\
         <text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>",
        TOP + plot_h,
        LEFT + plot_w,
        TOP + plot_h,
        LEFT - 6,
        TOP + 10,
        LEFT - 6,
        TOP + plot_h,
    );
    let label_step = if n > 30 { 4 } else { 2 };
    for (i, w) in (0_i64..).zip(weeks) {
        let h = i64::try_from(w.count.saturating_mul(u64::try_from(plot_h).unwrap_or(0)) / max)
            .unwrap_or(plot_h);
        // A week with certificates always shows a bar, however small beside the tallest.
        let h = if w.count > 0 { h.max(2) } else { 0 };
        let x = LEFT + i * slot + (slot - bar_w) / 2;
        let y = TOP + plot_h - h;
        let href = week_href(w);
        let label = format!(
            "{} {}: {} certificate{}",
            if per == 1 { "Week of" } else { "Weeks from" },
            date(w.from_ms),
            w.count,
            if w.count == 1 { "" } else { "s" }
        );
        let _ = write!(
            m,
            "<a href=\"{}\" aria-label=\"{}\"><rect class=\"hit\" x=\"{}\" y=\"{TOP}\" width=\"{slot}\" height=\"{plot_h}\"/>\
             <rect class=\"bar\" x=\"{x}\" y=\"{y}\" width=\"{bar_w}\" height=\"{h}\"><title>{}</title></rect>",
            escape(&href),
            escape(&label),
            LEFT + i * slot,
            escape(&label)
        );
        if w.count > 0 {
            let _ = write!(
                m,
                "<text class=\"count\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x + bar_w / 2,
                y - 4,
                w.count
            );
        }
        m.push_str("</a>");
        // Full dates (a timeline of 13 months crosses a new year), spaced so they do not touch.
        if i % label_step == 0 {
            let _ = write!(
                m,
                "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\" transform=\"rotate(-45 {} {})\">{}</text>",
                x + bar_w / 2,
                TOP + plot_h + 14,
                x + bar_w / 2,
                TOP + plot_h + 14,
                escape(&date(w.from_ms))
            );
        }
    }
    m.push_str("</svg></figure>");
    m.push_str(
        "<div class=\"table-wrap\"><table id=\"timeline-table\"><caption>Certificates expiring per week</caption>\
         <thead><tr><th scope=\"col\">From</th><th scope=\"col\">Until</th><th scope=\"col\">Certificates</th></tr></thead><tbody>",
    );
    for w in weeks {
        let _ = write!(
            m,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td><a href=\"{}\">{}</a></td></tr>",
            escape(&date(w.from_ms)),
            escape(&date(w.before_ms - 1)),
            escape(&week_href(w)),
            w.count
        );
    }
    m.push_str("</tbody></table></div>");
    page("Expiry timeline", Some(chrome), &m)
}

/// The inventory of one week's certificates, soonest first.
pub(crate) fn week_href(w: &ExpiryWeek) -> String {
    let q = ListQuery {
        expires_within: Some((w.from_ms, w.before_ms)),
        sort_key: SortKey::ExpiredTime,
        ascending: true,
        limit: 20,
        ..ListQuery::default()
    };
    inventory_href(&q, 0)
}

/// A page for a refused or failed request.
pub(crate) fn problem(chrome: Option<&Chrome<'_>>, title: &str, text: &str) -> String {
    let m = format!(
        "<h1>{}</h1><p>{}</p><p><a href=\"/console/certificates\">Back to the certificates</a></p>",
        escape(title),
        escape(text)
    );
    page(title, chrome, &m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_records::{issued_record, record};
    use scm_proto::{Brand, CertificateStatus};

    #[test]
    fn escape_covers_every_html_special_character() {
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&amp;</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
        );
        assert_eq!(escape("plain text é 漢字"), "plain text é 漢字");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn values_in_links_are_percent_encoded_then_escaped() {
        let q = ListQuery {
            content: Some("a&b=c <x>\"".into()),
            ..ListQuery::default()
        };
        let href = inventory_href(&q, 20);
        assert!(href.starts_with("/console/certificates?content=a%26b%3Dc%20%3Cx%3E%22&"));
        assert!(href.ends_with("&limit=10&offset=20"));
        assert!(!escape(&href).contains('"'));
    }

    #[test]
    fn pages_escape_user_values() {
        let chrome = Chrome {
            account: "<acc>",
            account_id: "<id>",
            access_key: "AK\"",
            csrf: "'c'",
        };
        let q = ListQuery {
            content: Some("<script>alert(1)</script>".into()),
            ..ListQuery::default()
        };
        let html = inventory(&chrome, &q, &[], 0, 0);
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("&lt;acc&gt;"));
        assert!(html.contains("value=\"&#39;c&#39;\""));
        assert!(html.contains("No certificate matches."));
    }

    #[test]
    fn timeline_bars_link_to_their_weeks() {
        let chrome = Chrome {
            account: "a",
            account_id: "0123",
            access_key: "k",
            csrf: "c",
        };
        let weeks = scm_core::service::console::expiry_weeks(
            1_796_342_400_000,
            scm_core::service::console::WEEK_MS,
            &[4, 0, 2],
        );
        let html = timeline(
            &chrome,
            &Timeline {
                bars: weeks.clone(),
                weeks_per_bar: 1,
            },
        );
        assert_eq!(html.matches("<rect class=\"bar\"").count(), 3);
        assert!(html.contains(&escape(&week_href(&weeks[0]))));
        assert!(html.contains("expires_from=1796342400000&amp;expires_before=1796947200000"));
        assert!(html.contains("Week of 2026-12-04: 4 certificates"));
        assert!(html.contains("6 certificates expire in the next 3 weeks"));
        // Bars of several weeks say so.
        let wide = scm_core::service::console::expiry_weeks(
            1_796_342_400_000,
            2 * scm_core::service::console::WEEK_MS,
            &[1, 0],
        );
        let html = timeline(
            &chrome,
            &Timeline {
                bars: wide,
                weeks_per_bar: 2,
            },
        );
        assert!(html.contains("Weeks from 2026-12-04: 1 certificate"));
        assert!(html.contains("1 certificate expires in the next 4 weeks"));
    }

    /// The versions section lists each version, the proofs pending and the history, escaped,
    /// with the renew button and the auto-renew switch for an issued certificate.
    #[test]
    fn details_show_versions_proofs_and_history_escaped() {
        let chrome = Chrome {
            account: "a",
            account_id: "0123",
            access_key: "k",
            csrf: "c",
        };
        let issued = issued_record("0a0b", 90 * 86_400_000, None);
        let cert = CertificateRecord {
            issued: Some(issued.clone()),
            lifecycle: scm_store::LifecycleRecord {
                current_version: Some(2),
                renew_at_ms: Some(60 * 86_400_000),
                auto_renew: true,
                validation_started_ms: Some(1),
            },
            ..record("renewed", CertificateStatus::Issued)
        };
        let versions = [2, 1].map(|seq| scm_store::VersionRecord {
            seq,
            reason: if seq == 2 { "renewal" } else { "issued" }.into(),
            issued: issued.clone(),
            renew_at_ms: None,
        });
        let events = [scm_store::EventRecord {
            at_ms: 0,
            event: "validation_failed".into(),
            detail: "<script>x</script>: no TXT record".into(),
            actor: "job 7".into(),
        }];
        let proofs = [scm_core::lifecycle::validation::Proof {
            domain: "www.example.com".into(),
            record_name: "_dnsauth.www.example.com".into(),
            record_type: "TXT".into(),
            record_value: "v\"<b>".into(),
        }];
        let html = details(
            &chrome,
            &Details {
                cert: &cert,
                chain: &[],
                pushes: &[],
                deployments: &[],
                tags: &[],
                versions: &versions,
                events: &events,
                proofs: &proofs,
                reminders_off: &["CERT_EXPIRED".to_owned()],
                targets: &["web-1", "<lb>"],
                now_ms: 0,
            },
        );
        assert!(html.contains("id=\"versions-table\""));
        assert!(html.contains("2 (current)"));
        assert!(html.contains("_dnsauth.www.example.com"));
        assert!(!html.contains("<script>x"));
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;: no TXT record"));
        assert!(!html.contains("v\"<b>"));
        assert!(html.contains("id=\"renew-button\""));
        assert!(html.contains("Turn automatic renewal off"));
        assert!(html.contains("action=\"/console/certificates/scs1764770000000/renew\""));
        // Issued by the built-in CA; reminders half off, so the switch turns them on; the
        // account's targets to push to, escaped; a delete step.
        assert!(
            html.contains("<dt>Issued by</dt><dd>the built-in CA (this account&#39;s own CA)</dd>")
        );
        assert!(html.contains("Only before it expires (CERT_EXPIRING)"));
        assert!(html.contains("name=\"reminders\" value=\"on\""));
        assert!(html.contains("<option>web-1</option><option>&lt;lb&gt;</option>"));
        assert!(html.contains("href=\"/console/certificates/scs1764770000000/delete\""));
        assert!(
            html.contains("<dt>Brand</dt><dd>GLOBALSIGN</dd><dt>Type</dt><dd>DV_SSL_CERT</dd>")
        );
    }

    /// An imported certificate's details say whether its chain is trusted, and show a brand
    /// only for a trusted chain (never the placeholder product it is stored with).
    #[test]
    fn imported_details_tell_the_chain_trust() {
        use scm_store::ChainTrustRecord;

        let chrome = Chrome {
            account: "a",
            account_id: "0123",
            access_key: "k",
            csrf: "c",
        };
        let record = |trust: Option<ChainTrustRecord>| CertificateRecord {
            product: scm_store::Product {
                brand: Brand::Cfca,
                ..record("imported", CertificateStatus::Upload).product
            },
            issuer: Some("CN=GlobalSign RSA OV SSL CA 2018".into()),
            chain_trust: trust,
            ..record("imported", CertificateStatus::Upload)
        };
        let page = |c: &CertificateRecord| {
            details(
                &chrome,
                &Details {
                    cert: c,
                    chain: &[],
                    pushes: &[],
                    deployments: &[],
                    tags: &[],
                    versions: &[],
                    events: &[],
                    proofs: &[],
                    reminders_off: &[],
                    targets: &[],
                    now_ms: 0,
                },
            )
        };
        let trusted = page(&record(Some(ChainTrustRecord {
            trusted: true,
            note: "the chain reaches \"CN=GlobalSign\", which the server trusts (x)".into(),
        })));
        assert!(
            trusted.contains("<dt>Brand</dt><dd>GLOBALSIGN</dd><dt>Type</dt><dd>—</dd>"),
            "{trusted}"
        );
        assert!(trusted.contains(
            "<dt>Issued by</dt><dd>imported (issuer CN=GlobalSign RSA OV SSL CA 2018)</dd>"
        ));
        assert!(trusted.contains("<dd>trusted: the chain reaches &quot;CN=GlobalSign&quot;"));
        assert!(
            !trusted.contains("CFCA"),
            "the placeholder product is not shown"
        );
        let untrusted = page(&record(Some(ChainTrustRecord {
            trusted: false,
            note: "the certificate is self-signed".into(),
        })));
        assert!(
            untrusted.contains("<dt>Brand</dt><dd>—</dd>"),
            "{untrusted}"
        );
        assert!(untrusted.contains("<dd>not trusted: the certificate is self-signed</dd>"));
        let old = page(&record(None));
        assert!(old.contains("<dt>Brand</dt><dd>—</dd>"));
        assert!(old.contains("not verified (imported before OpenSCM verified chains)"));

        // --- revocation ---
        // Only an issued certificate OpenSCM issued has a revoke step; a revoked one shows why.
        assert!(
            !old.contains("/revoke"),
            "an imported certificate is not revoked"
        );
        let mut issued = record(None);
        issued.issuer = None;
        issued.chain_trust = None;
        issued.name = "<shop>".into();
        issued.status = CertificateStatus::Issued;
        issued.issued = Some(issued_record("4a01", 1, None));
        assert!(page(&issued).contains("href=\"/console/certificates/scs1764770000000/revoke\""));
        let form = revoke_form(&chrome, &issued, Some("the reason <is> bad"));
        assert!(
            form.contains("Revoke &lt;shop&gt;") && !form.contains("<shop>"),
            "{form}"
        );
        assert!(form.contains("the reason &lt;is&gt; bad"));
        assert!(form.contains("name=\"csrf\" value=\"c\""));
        assert!(form.contains("name=\"confirm\" value=\"yes\" required"));
        assert!(form.contains("action=\"/console/certificates/scs1764770000000/revoke\""));
        let mut revoked = issued.clone();
        revoked.status = CertificateStatus::Revoked;
        revoked.revocation = Some(scm_store::RevocationRecord {
            revoked_ms: 0,
            reason: "<b>gone</b>".into(),
        });
        let shown = page(&revoked);
        assert!(shown.contains("<dt>Revocation reason</dt><dd>&lt;b&gt;gone&lt;/b&gt;</dd>"));
        assert!(!shown.contains("/revoke\""), "{shown}");
    }

    /// A certificate expiring within 30 days, or expired, is highlighted in words; a revoked one
    /// or one not issued is not.
    #[test]
    fn expiry_urgency_in_words() {
        const DAY: i64 = 86_400_000;
        let now = 1_796_342_400_000;
        let cert = |status, not_after: Option<i64>, ca: Option<&str>| CertificateRecord {
            issued: not_after.map(|n| issued_record("01", n, ca)),
            ..record("n", status)
        };
        let issued = CertificateStatus::Issued;
        assert_eq!(
            urgency(&cert(issued, Some(now + 31 * DAY), None), now),
            None
        );
        assert_eq!(
            urgency(&cert(issued, Some(now + 30 * DAY), None), now),
            Some(("expiring", "expires in 30 days".into()))
        );
        assert_eq!(
            urgency(&cert(issued, Some(now + 20 * DAY + 5), None), now),
            Some(("expiring", "expires in 20 days".into()))
        );
        assert_eq!(
            urgency(&cert(issued, Some(now + DAY), None), now),
            Some(("expiring", "expires in 1 day".into()))
        );
        assert_eq!(
            urgency(&cert(issued, Some(now + 1), None), now),
            Some(("expiring", "expires within a day".into()))
        );
        assert_eq!(
            urgency(&cert(issued, Some(now), None), now),
            Some(("expired", "expired".into()))
        );
        assert_eq!(
            urgency(&cert(CertificateStatus::Revoked, Some(now), None), now),
            None
        );
        assert_eq!(
            urgency(&cert(CertificateStatus::Paid, None, None), now),
            None
        );

        // The inventory tints the rows and says it in words.
        let chrome = Chrome {
            account: "shop-team",
            account_id: "0123",
            access_key: "k",
            csrf: "c",
        };
        let rows = [
            cert(issued, Some(now + 20 * DAY), Some("acme:letsencrypt")),
            cert(issued, Some(now - DAY), Some("0f0f")),
            cert(issued, Some(now + 200 * DAY), None),
        ];
        let html = inventory(&chrome, &ListQuery::default(), &rows, 3, now);
        assert_eq!(html.matches("<tr class=\"expiring\">").count(), 1, "{html}");
        assert_eq!(html.matches("<tr class=\"expired\">").count(), 1);
        assert!(html.contains("<span class=\"due expiring\">expires in 20 days</span>"));
        assert!(html.contains("<td class=\"wide\">ACME: letsencrypt</td>"));
        assert!(html.contains("<td class=\"wide\">built-in CA</td>"));
        // The account by its name; its id only in the tooltip.
        assert!(
            html.contains("<span class=\"account\" title=\"Account ID 0123\">shop-team</span>")
        );
        // The link to what expires within 30 days.
        assert!(html.contains(&escape(&expiring_href(now))));
        assert!(expiring_href(now).contains(&format!(
            "expires_from={now}&expires_before={}",
            now + 30 * DAY
        )));

        // Deletion is offered where DeleteCertificate or UnsubscribeCertificate takes it, not
        // under review; its confirmation page escapes and needs the box ticked.
        assert!(removable(&cert(issued, Some(now + DAY), None), now));
        assert!(removable(&cert(CertificateStatus::Paid, None, None), now));
        assert!(!removable(
            &cert(CertificateStatus::CheckingDomain, None, None),
            now
        ));
        let mut named = cert(issued, Some(now + DAY), None);
        named.name = "<shop>".into();
        let form = delete_form(&chrome, &named, Some("<no>"));
        assert!(form.contains("Delete &lt;shop&gt;") && !form.contains("<shop>"));
        assert!(form.contains("&lt;no&gt;"));
        assert!(form.contains("name=\"confirm\" value=\"yes\" required"));
        assert!(form.contains("action=\"/console/certificates/scs1764770000000/delete\""));
        assert!(form.contains("name=\"csrf\" value=\"c\""));
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(datetime(1_796_349_460_000), "2026-12-04 01:57 UTC");
        assert_eq!(date(0), "1970-01-01");
    }
}
