//! Text for HTML: the one escaping rule of the mail templates and the dashboard.

/// `&`, `<`, `>`, `"` and `'` as entities: enough for text and for quoted attributes
/// (every attribute in wachter's templates is quoted). `/` stays as it is, so URLs and paths
/// read normally.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
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

#[cfg(test)]
mod tests {
    #[test]
    fn markup_and_quotes_become_entities() {
        assert_eq!(
            super::escape(r#"<img src=x onerror="a('b')"> & /path"#),
            "&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt; &amp; /path"
        );
    }
}
