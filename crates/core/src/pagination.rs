//! GitLab's offset pagination (Kaminari defaults): `page` from 1,
//! `per_page` 20 by default and at most 100. Junk falls back to the default.

/// Totals of big listings are counted up to this many rows (GitLab's 10,000).
pub const COUNT_CAP: i64 = 10_000;

pub const DEFAULT_PER_PAGE: u64 = 20;
pub const MAX_PER_PAGE: u64 = 100;
/// Pages beyond this are treated as this one: far past any real table,
/// and it keeps `offset` well inside an `i64`.
const MAX_PAGE: u64 = 1 << 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u64,
    pub per_page: u64,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
        }
    }
}

/// A leading run of ASCII digits, as Ruby's `to_i` reads it; `None` when
/// there are none (or a sign comes first).
fn leading_integer(raw: &str) -> Option<u64> {
    let raw = raw.trim_start();
    let digits: &str = &raw[..raw.bytes().take_while(u8::is_ascii_digit).count()];
    if digits.is_empty() {
        return None;
    }
    Some(digits.parse::<u64>().unwrap_or(u64::MAX))
}

impl PageRequest {
    pub fn parse(page: Option<&str>, per_page: Option<&str>) -> Self {
        let page = page
            .and_then(leading_integer)
            .filter(|p| *p >= 1)
            .unwrap_or(1)
            .min(MAX_PAGE);
        let per_page = per_page
            .and_then(leading_integer)
            .filter(|p| *p >= 1)
            .unwrap_or(DEFAULT_PER_PAGE)
            .min(MAX_PER_PAGE);
        Self { page, per_page }
    }

    pub fn offset(&self) -> i64 {
        ((self.page - 1) * self.per_page) as i64
    }

    pub fn limit(&self) -> i64 {
        self.per_page as i64
    }
}

/// What the pagination headers say about one page of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageInfo {
    pub page: u64,
    pub per_page: u64,
    /// `None` past [`COUNT_CAP`] rows: GitLab then leaves out
    /// `X-Total`, `X-Total-Pages` and the `last` link.
    pub total: Option<u64>,
    pub total_pages: Option<u64>,
    pub next_page: Option<u64>,
    pub prev_page: Option<u64>,
}

impl PageInfo {
    /// `total` as the store counted it (capped); `on_page` the rows returned.
    pub fn new(req: PageRequest, total: u64, on_page: usize) -> Self {
        if total > COUNT_CAP as u64 {
            let full = on_page as u64 == req.per_page;
            return Self {
                page: req.page,
                per_page: req.per_page,
                total: None,
                total_pages: None,
                next_page: full.then(|| req.page + 1),
                prev_page: (req.page > 1).then(|| req.page - 1),
            };
        }
        let total_pages = total.div_ceil(req.per_page).max(1);
        let out_of_range = req.page > total_pages;
        Self {
            page: req.page,
            per_page: req.per_page,
            total: Some(total),
            total_pages: Some(total_pages),
            next_page: (!out_of_range && req.page < total_pages).then(|| req.page + 1),
            prev_page: (!out_of_range && req.page > 1).then(|| req.page - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_kaminari() {
        let cases: &[(Option<&str>, Option<&str>, u64, u64)] = &[
            (None, None, 1, 20),
            (Some("2"), Some("5"), 2, 5),
            (Some("0"), Some("0"), 1, 20),
            (Some("-3"), Some("-1"), 1, 20),
            (Some("abc"), Some("abc"), 1, 20),
            (Some("3x"), Some("7y"), 3, 7),
            (None, Some("100"), 1, 100),
            (None, Some("101"), 1, 100),
            (
                Some("99999999999999999999999"),
                Some("99999999999999999999"),
                MAX_PAGE,
                100,
            ),
        ];
        for (page, per_page, want_page, want_per) in cases {
            let r = PageRequest::parse(*page, *per_page);
            assert_eq!(
                (r.page, r.per_page),
                (*want_page, *want_per),
                "{page:?} {per_page:?}"
            );
            assert!(r.offset() >= 0);
        }
    }

    #[test]
    fn page_info_edges() {
        let req = |page, per_page| PageRequest { page, per_page };
        let i = PageInfo::new(req(1, 20), 0, 0);
        assert_eq!(
            (i.total_pages, i.next_page, i.prev_page),
            (Some(1), None, None)
        );
        let i = PageInfo::new(req(1, 2), 5, 2);
        assert_eq!(
            (i.total_pages, i.next_page, i.prev_page),
            (Some(3), Some(2), None)
        );
        let i = PageInfo::new(req(2, 2), 5, 2);
        assert_eq!((i.next_page, i.prev_page), (Some(3), Some(1)));
        let i = PageInfo::new(req(3, 2), 5, 1);
        assert_eq!((i.next_page, i.prev_page), (None, Some(2)));
        let i = PageInfo::new(req(9, 2), 5, 0);
        assert_eq!((i.next_page, i.prev_page), (None, None));
        // Past the counting cap: no totals; a full page has a next one.
        let i = PageInfo::new(req(600, 20), 10_001, 20);
        assert_eq!(
            (i.total, i.total_pages, i.next_page, i.prev_page),
            (None, None, Some(601), Some(599))
        );
        let i = PageInfo::new(req(600, 20), 10_001, 7);
        assert_eq!(i.next_page, None);
    }
}
