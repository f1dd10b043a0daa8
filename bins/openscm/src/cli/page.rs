//! Lists longer or shorter than the API's pages: `--limit N` (any N from 1), `--offset N` and
//! `--all` of `cert list`, `csr list` and `tag find`, fetched with the API's `limit`/`offset`.
//!
//! The API's list operations (ListCertificates, ListCsr, ListCertificatesByTag) take a page size
//! `limit` of 10 to 50 and an item `offset`, and answer the page with the total number of
//! matches. The client asks for pages of the size it still needs (at least 10, at most 50),
//! stops at the end (an empty or short page, or the total reached) and trims what it got to the
//! number asked for.

use clap::Args;

use super::Failure;

/// The smallest page size the API takes.
pub const API_MIN: u32 = 10;
/// The largest page size the API takes.
pub const API_MAX: u32 = 50;
/// What is shown without `--limit` or `--all` (the API's default page size).
pub const DEFAULT_LIMIT: u32 = 10;
/// The largest `--offset` the API takes.
pub const MAX_OFFSET: u32 = 1_000_000;

/// `--limit`, `--offset`, `--all`.
#[derive(Debug, Clone, Copy, Args)]
pub struct PageArgs {
    /// How many to show, from 1 [default: 10]; more than 50 are fetched page by page.
    // Negative numbers are taken as values, so that `--limit -1` is refused for its range rather
    // than as an unknown option.
    #[arg(
        long,
        value_parser = clap::value_parser!(u32).range(1..=100_000),
        allow_negative_numbers = true,
        conflicts_with = "all"
    )]
    pub limit: Option<u32>,
    /// How many to skip.
    #[arg(
        long,
        default_value_t = 0,
        value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_OFFSET)),
        allow_negative_numbers = true
    )]
    pub offset: u32,
    /// Every one (from --offset), fetched page by page.
    #[arg(long)]
    pub all: bool,
}

impl PageArgs {
    /// How many items are wanted: `None` for all.
    pub fn wanted(&self) -> Option<u64> {
        if self.all {
            None
        } else {
            Some(u64::from(self.limit.unwrap_or(DEFAULT_LIMIT)))
        }
    }
}

/// One page as the API answered it.
pub struct Page<T> {
    /// Its items.
    pub items: Vec<T>,
    /// The number of matches of the whole list.
    pub total: u64,
}

/// The page size to ask for when `remaining` items are still wanted (`None`: all).
fn page_size(remaining: Option<u64>) -> u32 {
    match remaining {
        None => API_MAX,
        Some(r) => u32::try_from(r).unwrap_or(API_MAX).clamp(API_MIN, API_MAX),
    }
}

/// Fetches `wanted` items (`None`: all) from `offset`, page by page with `fetch(limit, offset)`;
/// answers them (at most `wanted`) and the total the API counted.
pub async fn collect<T, F, Fut>(
    offset: u32,
    wanted: Option<u64>,
    mut fetch: F,
) -> Result<Page<T>, Failure>
where
    F: FnMut(u32, u32) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, Failure>>,
{
    let mut items: Vec<T> = Vec::new();
    let mut total = 0;
    loop {
        let got = items.len() as u64;
        let remaining = wanted.map(|w| w.saturating_sub(got));
        if remaining == Some(0) {
            break;
        }
        let at = u64::from(offset) + got;
        let Ok(at) = u32::try_from(at) else { break };
        if at > MAX_OFFSET {
            break;
        }
        let size = page_size(remaining);
        let page = fetch(size, at).await?;
        total = page.total;
        let n = page.items.len();
        items.extend(page.items);
        // The end: a short page (the last one), or every match seen. An empty page too, so a
        // server that miscounts cannot keep us asking.
        if n < size as usize || u64::from(at) + n as u64 >= total {
            break;
        }
    }
    if let Some(w) = wanted {
        items.truncate(usize::try_from(w).unwrap_or(usize::MAX));
    }
    Ok(Page { items, total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A list of `n` items served in pages as the API does (10..=50, item offsets), recording
    /// each request.
    fn served(n: u32, calls: &Mutex<Vec<(u32, u32)>>, limit: u32, offset: u32) -> Page<u32> {
        assert!((API_MIN..=API_MAX).contains(&limit), "limit {limit}");
        calls.lock().unwrap().push((limit, offset));
        let items = (offset..n).take(limit as usize).collect();
        Page {
            items,
            total: u64::from(n),
        }
    }

    async fn run(n: u32, offset: u32, wanted: Option<u64>) -> (Vec<u32>, u64, Vec<(u32, u32)>) {
        let calls = Mutex::new(Vec::new());
        let page = collect(offset, wanted, |l, o| {
            let p = served(n, &calls, l, o);
            async move { Ok(p) }
        })
        .await
        .unwrap();
        (page.items, page.total, calls.into_inner().unwrap())
    }

    #[tokio::test]
    async fn a_small_limit_asks_the_smallest_page_and_trims() {
        let (items, total, calls) = run(11, 0, Some(5)).await;
        assert_eq!(items, [0, 1, 2, 3, 4]);
        assert_eq!(total, 11);
        assert_eq!(calls, [(10, 0)]);
    }

    #[tokio::test]
    async fn a_large_limit_is_fetched_in_pages_of_at_most_fifty() {
        let (items, _, calls) = run(500, 3, Some(120)).await;
        assert_eq!(items, (3..123).collect::<Vec<_>>());
        assert_eq!(calls, [(50, 3), (50, 53), (20, 103)]);
    }

    #[tokio::test]
    async fn all_reads_to_the_end_and_stops_there() {
        let (items, total, calls) = run(101, 0, None).await;
        assert_eq!(items.len(), 101);
        assert_eq!(total, 101);
        assert_eq!(calls, [(50, 0), (50, 50), (50, 100)]);
        // An exact multiple of the page: the total says it is done, no empty page asked for.
        let (items, _, calls) = run(100, 0, None).await;
        assert_eq!(items.len(), 100);
        assert_eq!(calls, [(50, 0), (50, 50)]);
        // Nothing at all, or nothing past the offset.
        assert_eq!(run(0, 0, None).await.0, Vec::<u32>::new());
        let (items, total, _) = run(11, 20, Some(10)).await;
        assert!(items.is_empty());
        assert_eq!(total, 11);
    }

    #[tokio::test]
    async fn a_short_page_ends_the_list_whatever_the_total_says() {
        let calls = Mutex::new(0);
        let page = collect(0, None, |_, o| {
            *calls.lock().unwrap() += 1;
            // Claims 1000 but has only 12.
            let items: Vec<u32> = (o..12).take(50).collect();
            async move { Ok(Page { items, total: 1000 }) }
        })
        .await
        .unwrap();
        assert_eq!(page.items.len(), 12);
        assert_eq!(*calls.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn a_failure_is_the_commands_failure() {
        let r: Result<Page<u32>, _> = collect(0, None, |_, _| async {
            Err(Failure::Network("down".into()))
        })
        .await;
        assert!(matches!(r, Err(Failure::Network(_))));
    }
}
