//! `openscm tag ...`.

use clap::Subcommand;
use scm_proto::tags::{BatchTagsBody, CreateTagBody, KeyValues, ListByTagBody, ResourceTag};
use serde_json::json;

use super::output::{self, Table};
use super::page::{self, Page, PageArgs};
use super::{Ctx, Failure};

const EXAMPLES: &str = "\
Examples:
  openscm tag add scs1700000000000 env=prod team=web
  openscm tag list scs1700000000000
  openscm tag delete scs1700000000000 team        # KEY or KEY=VALUE
  openscm tag all -o json
  openscm tag find env=prod                        # certificates with that tag (the first 10)
  openscm tag find env --all -o json               # every certificate with the key env";

/// `openscm tag` subcommands.
#[derive(Debug, Subcommand)]
pub enum TagCommand {
    /// Add tags (KEY=VALUE) to a certificate.
    #[command(after_help = EXAMPLES)]
    Add {
        /// Certificate id.
        id: String,
        /// KEY=VALUE pairs.
        #[arg(required = true, value_parser = parse_tag)]
        tags: Vec<ResourceTag>,
    },
    /// The tags of a certificate.
    #[command(after_help = EXAMPLES)]
    List {
        /// Certificate id.
        id: String,
    },
    /// Delete tags (KEY or KEY=VALUE) of a certificate.
    #[command(after_help = EXAMPLES)]
    Delete {
        /// Certificate id.
        id: String,
        /// KEY or KEY=VALUE.
        #[arg(required = true, value_parser = parse_tag)]
        tags: Vec<ResourceTag>,
    },
    /// Every tag key of the account's certificates, with its values.
    #[command(after_help = EXAMPLES)]
    All,
    /// Certificates having every given tag (KEY, or KEY=VALUE).
    #[command(after_help = EXAMPLES)]
    Find {
        /// KEY or KEY=VALUE.
        #[arg(required = true, value_parser = parse_tag)]
        tags: Vec<ResourceTag>,
        #[command(flatten)]
        page: PageArgs,
    },
}

/// `KEY=VALUE` or `KEY`.
fn parse_tag(s: &str) -> Result<ResourceTag, String> {
    let (key, value) = match s.split_once('=') {
        Some((k, v)) => (k, Some(v.to_owned())),
        None => (s, None),
    };
    if key.is_empty() {
        return Err(format!("{s:?}: the key is empty"));
    }
    Ok(ResourceTag {
        key: Some(key.to_owned()),
        value,
    })
}

fn tags_table(tags: &[ResourceTag]) -> Table {
    let mut t = Table::new(&["KEY", "VALUE"]);
    for tag in tags {
        t.row([
            tag.key.clone().unwrap_or_default(),
            tag.value.clone().unwrap_or_default(),
        ]);
    }
    t
}

/// Runs a `tag` subcommand.
pub async fn run(ctx: &Ctx, command: TagCommand) -> Result<u8, Failure> {
    let client = &ctx.client;
    match command {
        TagCommand::Add { id, tags } => {
            // One tag: the single-tag call; several: one batch call (all or nothing).
            if let [tag] = tags.as_slice() {
                client
                    .create_tag(
                        &id,
                        &CreateTagBody {
                            tag: Some(tag.clone()),
                        },
                    )
                    .await?;
            } else {
                client
                    .batch_tags(
                        &id,
                        &BatchTagsBody {
                            action: Some("create".into()),
                            tags: Some(tags.clone()),
                        },
                    )
                    .await?;
            }
            output::print(
                ctx.format,
                &json!({"certificate_id": id, "added": tags}),
                || tags_table(&tags),
            );
        }
        TagCommand::List { id } => {
            let tags = client.certificate_tags(&id).await?.tags;
            output::print(ctx.format, &tags, || tags_table(&tags));
        }
        TagCommand::Delete { id, tags } => {
            client
                .batch_tags(
                    &id,
                    &BatchTagsBody {
                        action: Some("delete".into()),
                        tags: Some(tags.clone()),
                    },
                )
                .await?;
            output::print(
                ctx.format,
                &json!({"certificate_id": id, "deleted": tags}),
                || tags_table(&tags),
            );
        }
        TagCommand::All => {
            let all = client.all_tags().await?.tags;
            output::print(ctx.format, &all, || {
                let mut t = Table::new(&["KEY", "VALUES"]);
                for kv in &all {
                    t.row([
                        kv.key.clone().unwrap_or_default(),
                        kv.values.clone().unwrap_or_default().join(", "),
                    ]);
                }
                t
            });
        }
        TagCommand::Find { tags, page } => {
            let filter: Vec<KeyValues> = tags
                .iter()
                .map(|t| KeyValues {
                    key: t.key.clone(),
                    values: Some(t.value.clone().into_iter().collect()),
                })
                .collect();
            let filter = &filter;
            let found = page::collect(page.offset, page.wanted(), |limit, offset| async move {
                let answer = client
                    .certificates_by_tag(&ListByTagBody {
                        tags: Some(filter.clone()),
                        action: Some("filter".into()),
                        limit: Some(i64::from(limit)),
                        offset: Some(i64::from(offset)),
                        ..ListByTagBody::default()
                    })
                    .await?;
                Ok(Page {
                    items: answer.resources,
                    total: answer.total_count,
                })
            })
            .await?;
            output::print(ctx.format, &found.items, || {
                let mut t = Table::new(&["ID", "NAME", "TAGS"]);
                for r in &found.items {
                    let tags = r
                        .tags
                        .iter()
                        .map(|t| {
                            format!(
                                "{}={}",
                                t.key.as_deref().unwrap_or_default(),
                                t.value.as_deref().unwrap_or_default()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" ");
                    t.row([r.resource_id.clone(), r.resource_name.clone(), tags]);
                }
                t
            });
            output::note_partial(
                found.items.len(),
                u64::from(page.offset),
                found.total,
                "certificates",
            );
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse_as_key_or_key_value() {
        let t = parse_tag("env=prod=1").unwrap();
        assert_eq!(t.key.as_deref(), Some("env"));
        assert_eq!(t.value.as_deref(), Some("prod=1"));
        assert_eq!(parse_tag("env").unwrap().value, None);
        assert!(parse_tag("=x").is_err());
    }
}
