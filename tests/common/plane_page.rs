//! One page of a Plane list answer, shaped as Plane sends it (cursor `per_page:page:is_prev`),
//! for the fake Plane of the tests and of the bench.

use serde_json::{json, Value};

/// The page `page` (from 0) of `per_page` items out of `total`, holding `results`.
#[allow(clippy::cast_possible_wrap)] // page numbers are small
pub fn page(results: &[Value], total: usize, page: usize, per_page: usize) -> Value {
    let end = (page * per_page + results.len()).min(total);
    json!({
        "grouped_by": null, "sub_grouped_by": null, "total_count": total,
        "next_cursor": format!("{per_page}:{}:0", page + 1),
        "prev_cursor": format!("{per_page}:{}:1", page as i64 - 1),
        "next_page_results": end < total,
        "prev_page_results": page > 0,
        "count": results.len(),
        "total_pages": total.div_ceil(per_page),
        "total_results": total,
        "extra_stats": null,
        "results": results,
    })
}

/// The page number a cursor asks for (`None` for no cursor is page 0); `None` when the cursor
/// is not of Plane's form.
pub fn cursor_page(cursor: Option<&str>) -> Option<usize> {
    let Some(c) = cursor else { return Some(0) };
    let parts: Vec<&str> = c.split(':').collect();
    match (parts.len(), parts.get(1).and_then(|p| p.parse().ok())) {
        (3, Some(p)) => Some(p),
        _ => None,
    }
}
