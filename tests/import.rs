#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The import readers against fixture files in each export's real shape: WP-CLI JSON and CSV,
//! WordPress WXR, the Disqus export, and hamgate's own JSONL and CSV.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use hamgate::comment::{CommentKind, Label};
use hamgate::import::{
    parse_import, read_import_file, ImportError, ImportFormat, ImportedFile, Position, SkipReason,
};

fn parse(name: &str, text: &str) -> ImportedFile {
    parse_import(Path::new(name), text.as_bytes(), None)
        .unwrap_or_else(|e| panic!("{name} should parse: {e}"))
}

fn parse_err(name: &str, text: &str) -> ImportError {
    match parse_import(Path::new(name), text.as_bytes(), None) {
        Ok(f) => panic!("{name} should fail, read {} comments", f.comments.len()),
        Err(e) => e,
    }
}

fn skipped(file: &ImportedFile) -> Vec<(SkipReason, u64)> {
    file.skipped.iter().map(|(r, n)| (*r, *n)).collect()
}

fn assert_keys_distinct(file: &ImportedFile) {
    let keys: HashSet<&str> = file.comments.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys.len(), file.comments.len(), "keys must be distinct");
}

/// `wp comment list --status=any --format=json --fields=...`: every value a string, as WP-CLI
/// writes the `wp_comments` columns; a `null` where an exporter wrote one.
const WP_JSON: &str = r#"[{"comment_ID":"101","comment_post_ID":"12","comment_author":"Zoë Müller","comment_author_email":"zoe@example.org","comment_author_url":"https://zoe.example.org/?a=1&b=2","comment_author_IP":"2001:db8::7","comment_date":"2023-04-05 11:22:33","comment_date_gmt":"2023-04-05 09:22:33","comment_content":"Thanks! There&#8217;s a typo in <code>listing 3</code>: <a href=\"https://docs.rs/x\">x</a> &amp; y.\nSecond line \u2014 ok?","comment_approved":"1","comment_agent":"Mozilla/5.0 (X11; Linux x86_64) Firefox/124.0","comment_type":"comment","comment_parent":"0","user_id":"0"},{"comment_ID":"102","comment_post_ID":"12","comment_author":"Cheap Pills","comment_author_email":"sales@pills.example","comment_author_url":"http://pills.example","comment_author_IP":"203.0.113.9","comment_date":"2023-04-06 01:00:00","comment_date_gmt":"2023-04-05 23:00:00","comment_content":"Buy <a href=\"http://pills.example\">cheap pills</a> now!!!","comment_approved":"spam","comment_agent":"curl/8.0","comment_type":"comment","comment_parent":"101","user_id":"0"},{"comment_ID":"103","comment_post_ID":"12","comment_author":"Pending Pat","comment_author_email":"","comment_author_url":"","comment_author_IP":"198.51.100.1","comment_date":"2023-04-07 10:00:00","comment_date_gmt":"2023-04-07 08:00:00","comment_content":"Waiting for a moderator","comment_approved":"0","comment_agent":"","comment_type":"comment","comment_parent":"0","user_id":"0"},{"comment_ID":"104","comment_post_ID":"13","comment_author":"Trashy","comment_author_email":"t@example.net","comment_author_url":"","comment_author_IP":"198.51.100.2","comment_date":"2023-04-08 10:00:00","comment_date_gmt":"2023-04-08 08:00:00","comment_content":"Rude but not spam","comment_approved":"trash","comment_agent":"","comment_type":"comment","comment_parent":"0","user_id":"0"},{"comment_ID":"105","comment_post_ID":"13","comment_author":"Other Blog","comment_author_email":"","comment_author_url":"https://other.example/post","comment_author_IP":"192.0.2.5","comment_date":"2023-04-09 10:00:00","comment_date_gmt":"2023-04-09 08:00:00","comment_content":"[&#8230;] as seen on this post [&#8230;]","comment_approved":"1","comment_agent":"WordPress/6.4; https://other.example","comment_type":"pingback","comment_parent":"0","user_id":"0"},{"comment_ID":"106","comment_post_ID":"13","comment_author":null,"comment_author_email":null,"comment_author_url":null,"comment_author_IP":"192.0.2.6","comment_date":"2023-04-10 10:00:00","comment_date_gmt":"0000-00-00 00:00:00","comment_content":"日本語のコメント、ありがとう","comment_approved":"1","comment_agent":null,"comment_type":"","comment_parent":"0","user_id":"3"}]"#;

#[test]
fn wp_cli_json_maps_every_field() {
    let file = parse("comments.json", WP_JSON);
    assert_eq!(file.format, ImportFormat::WpCliJson);
    assert_eq!(file.comments.len(), 4);
    assert_eq!((file.count(Label::Ham), file.count(Label::Spam)), (3, 1));
    assert_eq!(
        skipped(&file),
        vec![(SkipReason::Pending, 1), (SkipReason::Trash, 1)]
    );
    assert_eq!(file.skipped_total(), 2);

    let first = &file.comments[0];
    assert_eq!(first.source_id, "101");
    assert_eq!(first.label, Label::Ham);
    // The content as WordPress stored it: HTML and the entity WordPress wrote are kept.
    assert_eq!(
        first.comment.content,
        "Thanks! There&#8217;s a typo in <code>listing 3</code>: <a href=\"https://docs.rs/x\">x</a> &amp; y.\nSecond line \u{2014} ok?"
    );
    assert_eq!(first.comment.author, "Zoë Müller");
    assert_eq!(first.comment.email, "zoe@example.org");
    assert_eq!(first.comment.url, "https://zoe.example.org/?a=1&b=2");
    assert_eq!(first.comment.ip, "2001:db8::7");
    assert_eq!(
        first.comment.user_agent,
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/124.0"
    );
    assert_eq!(first.comment.kind, CommentKind::Comment);
    assert_eq!(first.posted_at, Some(1_680_686_553)); // 2023-04-05 09:22:33 UTC
    assert_eq!(first.line, 1);

    let spam = &file.comments[1];
    assert_eq!(
        (spam.label, spam.comment.kind),
        (Label::Spam, CommentKind::Reply)
    );
    assert_eq!(spam.comment.user_agent, "curl/8.0");
    let ping = &file.comments[2];
    assert_eq!(ping.comment.kind, CommentKind::Pingback);
    let nulls = &file.comments[3];
    assert_eq!(nulls.comment.content, "日本語のコメント、ありがとう");
    assert_eq!(
        (nulls.comment.author.as_str(), nulls.comment.email.as_str()),
        ("", "")
    );
    assert_eq!(nulls.posted_at, None, "a zero GMT date is no date");
    assert_keys_distinct(&file);
}

#[test]
fn import_keys_are_stable_across_reads_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.json");
    std::fs::write(&path, WP_JSON).unwrap();
    let a = read_import_file(&path, None).unwrap();
    let b = read_import_file(&path, None).unwrap();
    assert_eq!(a, b);
    let keys = |f: &ImportedFile| f.comments.iter().map(|c| c.key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&a), keys(&b));
    // The same WordPress comment in another export format has the same key.
    let csv = "comment_ID,comment_approved,comment_content\n101,1,\"other text, same comment\"\n";
    let from_csv = parse("export.csv", csv);
    assert_eq!(from_csv.comments[0].key, a.comments[0].key);
    // A forced format is honoured, and reads the same.
    let forced = parse_import(&path, WP_JSON.as_bytes(), Some(ImportFormat::WpCliJson)).unwrap();
    assert_eq!(keys(&forced), keys(&a));
    // A missing file names the file.
    let err = read_import_file(&dir.path().join("nope.json"), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nope.json") && err.contains("cannot read"),
        "{err}"
    );
}

/// `wp comment list --format=csv --fields=...`: PHP's fputcsv quoting, embedded newlines,
/// commas and doubled quotes; no `comment_ID`, so keys come from the content.
const WP_CSV: &str = "comment_author,comment_author_email,comment_author_url,comment_author_IP,comment_date_gmt,comment_content,comment_approved,comment_agent,comment_type,comment_parent\n\
Ann,ann@example.org,,192.0.2.10,\"2024-01-02 03:04:05\",\"Great post, thanks.\nOne question: does \"\"--fields\"\" take commas?\",1,\"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2)\",comment,0\n\
Bot,bot@spam.example,http://spam.example,203.0.113.50,\"2024-01-03 00:00:00\",\"<a href=\"\"http://spam.example\"\">best casino</a>\",spam,,trackback,0\n\
\"\",,,192.0.2.11,\"2024-01-04 00:00:00\",+1,1,,,0\n\
\"\",,,192.0.2.11,\"2024-01-04 00:00:00\",+1,1,,,0\n\
Later,,,192.0.2.12,\"2024-01-05 00:00:00\",pending one,0,,,0\n";

#[test]
fn wp_cli_csv_reads_quoted_fields() {
    let file = parse("comments.csv", WP_CSV);
    assert_eq!(file.format, ImportFormat::WpCliCsv);
    assert_eq!(file.comments.len(), 4);
    assert_eq!(skipped(&file), vec![(SkipReason::Pending, 1)]);
    let ann = &file.comments[0];
    assert_eq!(
        ann.comment.content,
        "Great post, thanks.\nOne question: does \"--fields\" take commas?"
    );
    assert_eq!(ann.comment.author, "Ann");
    assert_eq!(ann.comment.ip, "192.0.2.10");
    assert_eq!(
        ann.comment.user_agent,
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2)"
    );
    assert_eq!(ann.line, 2);
    assert_eq!(ann.source_id, "");
    let bot = &file.comments[1];
    assert_eq!(
        (bot.label, bot.comment.kind),
        (Label::Spam, CommentKind::Trackback)
    );
    assert_eq!(
        bot.comment.content,
        "<a href=\"http://spam.example\">best casino</a>"
    );
    assert_eq!(bot.comment.url, "http://spam.example");
    assert_eq!(
        bot.line, 4,
        "the row after a two-line record starts on line 4"
    );
    // Two identical anonymous "+1"s are two comments with two keys.
    assert_eq!(file.comments[2].comment.content, "+1");
    assert_eq!(file.comments[3].comment.content, "+1");
    assert_keys_distinct(&file);
    assert_eq!(parse("again.csv", WP_CSV), {
        let mut f = parse("comments.csv", WP_CSV);
        f.path = "again.csv".into();
        f
    });
}

#[test]
fn a_bad_csv_row_names_its_line_and_imports_nothing() {
    let bad = format!("{WP_CSV}Short,row\n");
    let err = parse_err("comments.csv", &bad);
    let text = err.to_string();
    assert!(
        text.starts_with("comments.csv: line 8:") && text.contains("invalid CSV"),
        "{text}"
    );
    assert!(matches!(
        err,
        ImportError::Malformed {
            at: Position::Line(8),
            ..
        }
    ));
    // The default `wp comment list` fields have no content: the error says what to run.
    let err = parse_err(
        "default.csv",
        "comment_ID,comment_post_ID,comment_date,comment_approved,comment_author,comment_author_email\n1,1,2015-06-20 09:00:10,1,Mr WordPress,\n",
    )
    .to_string();
    assert!(
        err.contains("default.csv: line 1") && err.contains("--fields="),
        "{err}"
    );
}

#[test]
fn bad_json_names_its_line_and_imports_nothing() {
    let pretty = "[\n  {\"comment_ID\": \"1\", \"comment_approved\": \"1\", \"comment_content\": \"fine\"},\n  {\"comment_ID\": \"2\", \"comment_approved\": \"1\",\n   \"comment_content\": \"broken\" \"x\"}\n]\n";
    let err = parse_err("wp.json", pretty).to_string();
    assert!(err.starts_with("wp.json: line 4:"), "{err}");
    let truncated = &WP_JSON[..WP_JSON.len() / 2];
    let err = parse_err("wp.json", truncated).to_string();
    assert!(
        err.contains("wp.json: line 1") && err.contains("truncated"),
        "{err}"
    );
    let err = parse_err(
        "wp.json",
        "[{\"comment_ID\":\"1\",\"comment_approved\":[\"1\"],\"comment_content\":\"x\"}]",
    )
    .to_string();
    assert!(err.contains("comment_approved"), "{err}");
}

/// A WordPress export (Tools > Export) as WordPress writes it: RSS 2.0 with the WXR 1.2
/// namespaces, CDATA everywhere WordPress uses `wxr_cdata`, the author URL unescaped (as
/// `esc_url_raw` leaves it), comment meta, and `]]>` in a comment split across two sections.
const WXR: &str = r#"<?xml version="1.0" encoding="UTF-8" ?>
<!-- This is a WordPress eXtended RSS file generated by WordPress as an export of your site. -->
<rss version="2.0"
	xmlns:excerpt="http://wordpress.org/export/1.2/excerpt/"
	xmlns:content="http://purl.org/rss/1.0/modules/content/"
	xmlns:wfw="http://wellformedweb.org/CommentAPI/"
	xmlns:dc="http://purl.org/dc/elements/1.1/"
	xmlns:wp="http://wordpress.org/export/1.2/"
>
<channel>
	<title>A Blog &amp; Friends</title>
	<link>https://blog.example</link>
	<wp:wxr_version>1.2</wp:wxr_version>
	<wp:author><wp:author_id>1</wp:author_id><wp:author_login><![CDATA[admin]]></wp:author_login></wp:author>
	<item>
		<title><![CDATA[Hello world!]]></title>
		<link>https://blog.example/hello-world/</link>
		<dc:creator><![CDATA[admin]]></dc:creator>
		<content:encoded><![CDATA[<p>Welcome to WordPress.</p>]]></content:encoded>
		<excerpt:encoded><![CDATA[]]></excerpt:encoded>
		<wp:post_id>1</wp:post_id>
		<wp:comment_status><![CDATA[open]]></wp:comment_status>
		<wp:postmeta>
			<wp:meta_key><![CDATA[_edit_last]]></wp:meta_key>
			<wp:meta_value><![CDATA[1]]></wp:meta_value>
		</wp:postmeta>
		<wp:comment>
			<wp:comment_id>201</wp:comment_id>
			<wp:comment_author><![CDATA[Renée O'Brien]]></wp:comment_author>
			<wp:comment_author_email><![CDATA[renee@example.ie]]></wp:comment_author_email>
			<wp:comment_author_url>https://renee.example/?p=1&lang=en</wp:comment_author_url>
			<wp:comment_author_IP><![CDATA[192.0.2.33]]></wp:comment_author_IP>
			<wp:comment_date><![CDATA[2022-11-01 12:00:00]]></wp:comment_date>
			<wp:comment_date_gmt><![CDATA[2022-11-01 11:00:00]]></wp:comment_date_gmt>
			<wp:comment_content><![CDATA[<p>Lovely post &amp; thanks &#8212; the code in step 2 ends with ]]]]><![CDATA[> by mistake.</p>]]></wp:comment_content>
			<wp:comment_approved><![CDATA[1]]></wp:comment_approved>
			<wp:comment_type><![CDATA[comment]]></wp:comment_type>
			<wp:comment_parent>0</wp:comment_parent>
			<wp:comment_user_id>0</wp:comment_user_id>
			<wp:commentmeta>
				<wp:meta_key><![CDATA[akismet_result]]></wp:meta_key>
				<wp:meta_value><![CDATA[false]]></wp:meta_value>
			</wp:commentmeta>
		</wp:comment>
		<wp:comment>
			<wp:comment_id>202</wp:comment_id>
			<wp:comment_author><![CDATA[admin]]></wp:comment_author>
			<wp:comment_author_email><![CDATA[admin@blog.example]]></wp:comment_author_email>
			<wp:comment_author_url>https://blog.example</wp:comment_author_url>
			<wp:comment_author_IP><![CDATA[192.0.2.1]]></wp:comment_author_IP>
			<wp:comment_date><![CDATA[2022-11-02 12:00:00]]></wp:comment_date>
			<wp:comment_date_gmt><![CDATA[2022-11-02 11:00:00]]></wp:comment_date_gmt>
			<wp:comment_content><![CDATA[Thank you, fixed!]]></wp:comment_content>
			<wp:comment_approved><![CDATA[1]]></wp:comment_approved>
			<wp:comment_type><![CDATA[]]></wp:comment_type>
			<wp:comment_parent>201</wp:comment_parent>
			<wp:comment_user_id>1</wp:comment_user_id>
		</wp:comment>
	</item>
	<item>
		<title><![CDATA[Second post]]></title>
		<wp:post_id>2</wp:post_id>
		<wp:comment>
			<wp:comment_id>203</wp:comment_id>
			<wp:comment_author><![CDATA[Linking Blog]]></wp:comment_author>
			<wp:comment_author_email><![CDATA[]]></wp:comment_author_email>
			<wp:comment_author_url>https://linking.example/post</wp:comment_author_url>
			<wp:comment_author_IP><![CDATA[198.51.100.20]]></wp:comment_author_IP>
			<wp:comment_date><![CDATA[2022-11-03 12:00:00]]></wp:comment_date>
			<wp:comment_date_gmt><![CDATA[2022-11-03 11:00:00]]></wp:comment_date_gmt>
			<wp:comment_content><![CDATA[[&#8230;] see this [&#8230;]]]></wp:comment_content>
			<wp:comment_approved><![CDATA[1]]></wp:comment_approved>
			<wp:comment_type><![CDATA[pingback]]></wp:comment_type>
			<wp:comment_parent>0</wp:comment_parent>
			<wp:comment_user_id>0</wp:comment_user_id>
		</wp:comment>
		<wp:comment>
			<wp:comment_id>204</wp:comment_id>
			<wp:comment_author><![CDATA[Held]]></wp:comment_author>
			<wp:comment_content><![CDATA[Still waiting]]></wp:comment_content>
			<wp:comment_approved><![CDATA[0]]></wp:comment_approved>
		</wp:comment>
		<wp:comment>
			<wp:comment_id>205</wp:comment_id>
			<wp:comment_author><![CDATA[Binned]]></wp:comment_author>
			<wp:comment_content><![CDATA[Thrown away]]></wp:comment_content>
			<wp:comment_approved><![CDATA[trash]]></wp:comment_approved>
		</wp:comment>
		<wp:comment>
			<wp:comment_id>206</wp:comment_id>
			<wp:comment_author><![CDATA[Exported by a plugin]]></wp:comment_author>
			<wp:comment_content><![CDATA[cheap replica watches]]></wp:comment_content>
			<wp:comment_approved><![CDATA[spam]]></wp:comment_approved>
		</wp:comment>
		<wp:comment>
			<wp:comment_id>207</wp:comment_id>
			<wp:comment_content>No status: plain &lt;b&gt;text&lt;/b&gt; &#x263A;</wp:comment_content>
		</wp:comment>
	</item>
</channel>
</rss>
"#;

#[test]
fn wxr_reads_comments_with_cdata_and_entities() {
    let file = parse("blog.WordPress.2024-01-01.xml", WXR);
    assert_eq!(file.format, ImportFormat::WordPressWxr);
    let ids: Vec<&str> = file.comments.iter().map(|c| c.source_id.as_str()).collect();
    assert_eq!(ids, ["201", "202", "203", "206", "207"]);
    assert_eq!((file.count(Label::Ham), file.count(Label::Spam)), (4, 1));
    assert_eq!(
        skipped(&file),
        vec![(SkipReason::Pending, 1), (SkipReason::Trash, 1)]
    );
    let renee = &file.comments[0];
    // CDATA is taken verbatim (the HTML entities inside it are the blog's own), and the split
    // `]]>` is joined back.
    assert_eq!(
        renee.comment.content,
        "<p>Lovely post &amp; thanks &#8212; the code in step 2 ends with ]]> by mistake.</p>"
    );
    assert_eq!(renee.comment.author, "Renée O'Brien");
    assert_eq!(renee.comment.email, "renee@example.ie");
    assert_eq!(renee.comment.url, "https://renee.example/?p=1&lang=en");
    assert_eq!(renee.comment.ip, "192.0.2.33");
    assert_eq!(
        renee.comment.user_agent, "",
        "WXR does not export the agent"
    );
    assert_eq!(renee.comment.kind, CommentKind::Comment);
    assert_eq!(renee.posted_at, Some(1_667_300_400)); // 2022-11-01 11:00:00 UTC
    assert_eq!(renee.line, 27);
    assert_eq!(file.comments[1].comment.kind, CommentKind::Reply);
    assert_eq!(file.comments[2].comment.kind, CommentKind::Pingback);
    assert_eq!(file.comments[3].label, Label::Spam);
    // Outside CDATA, XML entities and character references are decoded.
    assert_eq!(
        file.comments[4].comment.content,
        "No status: plain <b>text</b> \u{263A}"
    );
    assert_eq!(file.comments[4].label, Label::Ham);
    assert_keys_distinct(&file);
    // The WP-CLI export of the same blog keys comment 201 the same way.
    let cli = parse(
        "cli.json",
        r#"[{"comment_ID":"201","comment_approved":"1","comment_content":"x"}]"#,
    );
    assert_eq!(cli.comments[0].key, renee.key);
}

#[test]
fn truncated_wxr_names_the_element_and_imports_nothing() {
    let cut = WXR.find("Thank you, fixed!").unwrap();
    let err = parse_err("blog.xml", &WXR[..cut]);
    let text = err.to_string();
    assert!(
        text.contains("blog.xml: line 53")
            && text.contains("rss/channel/item/wp:comment/wp:comment_content"),
        "{text}"
    );
    let ImportError::Malformed {
        at: Position::Xml { byte, .. },
        ..
    } = err
    else {
        panic!("an XML position: {text}")
    };
    assert!(byte > 0 && byte as usize <= cut, "{byte}");
    // Cut between elements, the open elements are named too.
    let cut = WXR.find("</item>").unwrap();
    let text = parse_err("blog.xml", &WXR[..cut]).to_string();
    assert!(
        text.contains("ends inside <item>") && text.contains("in <rss/channel/item>"),
        "{text}"
    );
    // A mismatched end tag.
    let bad = WXR.replacen("</wp:comment_type>", "</wp:comment_typo>", 1);
    let text = parse_err("blog.xml", &bad).to_string();
    assert!(
        text.contains("wp:comment_type") && text.contains("line 37"),
        "{text}"
    );
}

/// The Disqus export: categories, threads and posts side by side, Disqus's internals in the
/// `dsq` namespace, messages as HTML in CDATA.
const DISQUS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<disqus xmlns="http://disqus.com" xmlns:dsq="http://disqus.com/disqus-internals" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://disqus.com/api/schemas/1.0/disqus.xsd http://disqus.com/api/schemas/1.0/disqus-internals.xsd">
  <category dsq:id="1001">
    <forum>myblog</forum>
    <title>General</title>
    <isDefault>true</isDefault>
  </category>
  <thread dsq:id="2001">
    <id>post-12</id>
    <forum>myblog</forum>
    <category dsq:id="1001"/>
    <link>https://blog.example/post-12/</link>
    <title>Post &amp; more</title>
    <message><![CDATA[]]></message>
    <createdAt>2021-05-01T10:00:00Z</createdAt>
    <author>
      <name>Blog Owner</name>
      <isAnonymous>false</isAnonymous>
      <username>owner</username>
    </author>
    <isClosed>false</isClosed>
    <isDeleted>false</isDeleted>
  </thread>
  <post dsq:id="3001">
    <id/>
    <message><![CDATA[<p>Great write-up, ça marche &amp; merci!</p>]]></message>
    <createdAt>2021-05-02T10:00:00Z</createdAt>
    <isDeleted>false</isDeleted>
    <isSpam>false</isSpam>
    <author>
      <email>amelie@example.fr</email>
      <name>Amélie</name>
      <isAnonymous>false</isAnonymous>
      <username>amelie</username>
    </author>
    <ipAddress>192.0.2.44</ipAddress>
    <thread dsq:id="2001"/>
  </post>
  <post dsq:id="3002">
    <id/>
    <message><![CDATA[<p>Earn $5000/week from home <a href="http://scam.example">click</a></p>]]></message>
    <createdAt>2021-05-03T10:00:00Z</createdAt>
    <isDeleted>false</isDeleted>
    <isSpam>true</isSpam>
    <author>
      <email>x@scam.example</email>
      <name>Earn Money</name>
      <isAnonymous>true</isAnonymous>
    </author>
    <ipAddress>203.0.113.77</ipAddress>
    <thread dsq:id="2001"/>
  </post>
  <post dsq:id="3003">
    <id/>
    <message><![CDATA[<p>Off topic rant</p>]]></message>
    <createdAt>2021-05-04T10:00:00Z</createdAt>
    <isDeleted>true</isDeleted>
    <isSpam>false</isSpam>
    <author><name>Grumpy</name><isAnonymous>false</isAnonymous></author>
    <ipAddress>198.51.100.3</ipAddress>
    <thread dsq:id="2001"/>
  </post>
  <post dsq:id="3004">
    <id/>
    <message><![CDATA[<p>cheap viagra</p>]]></message>
    <createdAt>2021-05-05T10:00:00Z</createdAt>
    <isDeleted>true</isDeleted>
    <isSpam>true</isSpam>
    <author><name>Pharma</name><isAnonymous>true</isAnonymous></author>
    <ipAddress>203.0.113.78</ipAddress>
    <thread dsq:id="2001"/>
  </post>
  <post dsq:id="3005">
    <id/>
    <message>&lt;p&gt;Agreed with Amélie &#8212; thanks&lt;/p&gt;</message>
    <createdAt>2021-05-06T10:00:00Z</createdAt>
    <isDeleted>false</isDeleted>
    <isSpam>false</isSpam>
    <author><email>bo@example.se</email><name>Bo</name><isAnonymous>false</isAnonymous></author>
    <ipAddress>192.0.2.45</ipAddress>
    <thread dsq:id="2001"/>
    <parent dsq:id="3001"/>
  </post>
</disqus>
"#;

#[test]
fn disqus_posts_are_labelled_from_their_flags() {
    let file = parse("disqus-export.xml", DISQUS);
    assert_eq!(file.format, ImportFormat::DisqusXml);
    let ids: Vec<&str> = file.comments.iter().map(|c| c.source_id.as_str()).collect();
    assert_eq!(ids, ["3001", "3002", "3004", "3005"]);
    let labels: Vec<Label> = file.comments.iter().map(|c| c.label).collect();
    assert_eq!(labels, [Label::Ham, Label::Spam, Label::Spam, Label::Ham]);
    assert_eq!(skipped(&file), vec![(SkipReason::Deleted, 1)]);
    let amelie = &file.comments[0];
    assert_eq!(
        amelie.comment.content,
        "<p>Great write-up, ça marche &amp; merci!</p>"
    );
    assert_eq!(amelie.comment.author, "Amélie");
    assert_eq!(amelie.comment.email, "amelie@example.fr");
    assert_eq!(amelie.comment.ip, "192.0.2.44");
    assert_eq!(amelie.comment.kind, CommentKind::Comment);
    assert_eq!(amelie.posted_at, Some(1_619_949_600)); // 2021-05-02T10:00:00Z
    let bo = &file.comments[3];
    assert_eq!(bo.comment.kind, CommentKind::Reply);
    assert_eq!(
        bo.comment.content,
        "<p>Agreed with Amélie \u{2014} thanks</p>"
    );
    assert_keys_distinct(&file);
    assert_eq!(parse("again.xml", DISQUS).comments, file.comments);

    let bad = DISQUS.replacen("<isSpam>true</isSpam>", "<isSpam>maybe</isSpam>", 1);
    let text = parse_err("disqus-export.xml", &bad).to_string();
    assert!(
        text.contains("disqus/post") && text.contains("isSpam") && text.contains("maybe"),
        "{text}"
    );
}

#[test]
fn hamgate_jsonl_and_csv_take_nulls_and_key_by_content() {
    let jsonl = "{\"content\":\"Nice post\",\"label\":\"ham\",\"author\":null,\"email\":null,\"site\":\"other\"}\n\n{\"content\":\"BUY NOW\",\"label\":\"spam\",\"url\":\"http://x.example\",\"type\":\"trackback\"}\n{\"content\":\"Nice post\",\"label\":\"ham\",\"author\":null}\n";
    let file = parse("labels.jsonl", jsonl);
    assert_eq!(file.format, ImportFormat::HamgateJsonl);
    assert_eq!(file.comments.len(), 3);
    let lines: Vec<u64> = file.comments.iter().map(|c| c.line).collect();
    assert_eq!(lines, [1, 3, 4]);
    assert_eq!(file.comments[1].comment.kind, CommentKind::Trackback);
    assert_eq!(file.comments[1].comment.url, "http://x.example");
    assert_keys_distinct(&file);
    assert_eq!(parse("labels.jsonl", jsonl), file);
    let err = parse_err(
        "labels.jsonl",
        "{\"content\":\"a\",\"label\":\"ham\"}\n{\"content\":\"b\",\"label\":\"ham\"\n",
    )
    .to_string();
    assert!(err.starts_with("labels.jsonl: line 2:"), "{err}");

    let csv = "COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\nz1,Ann,,\"multi\nline, with comma\",0\nz2,Bot,,subscribe to my channel,1\n";
    let file = parse("mine.csv", csv);
    assert_eq!(file.format, ImportFormat::HamgateCsv);
    assert_eq!(file.comments[0].comment.content, "multi\nline, with comma");
    assert_eq!(file.comments[1].label, Label::Spam);
    assert_eq!(
        file.comments.iter().map(|c| c.line).collect::<Vec<_>>(),
        [2, 4]
    );
    let err = parse_err(
        "mine.csv",
        "COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\nz1,Ann,,hi,maybe\n",
    )
    .to_string();
    assert!(err.starts_with("mine.csv: line 2:"), "{err}");
}

#[test]
fn unknown_content_is_an_error_naming_the_file() {
    let err = parse_err("notes.txt", "just some notes\n").to_string();
    assert!(
        err.starts_with("notes.txt:") && err.contains("not a recognised export"),
        "{err}"
    );
    let err = parse_err("feed.xml", "<feed xmlns=\"http://www.w3.org/2005/Atom\"/>").to_string();
    assert!(err.contains("<feed>"), "{err}");
}

#[test]
fn ten_thousand_wp_cli_records_parse() {
    let mut json = String::from("[");
    for i in 0..10_000 {
        if i > 0 {
            json.push(',');
        }
        let status = match i % 10 {
            0 => "spam",
            9 => "0",
            _ => "1",
        };
        json.push_str(&format!(
            r#"{{"comment_ID":"{i}","comment_post_ID":"{}","comment_author":"Reader {i}","comment_author_email":"r{i}@example.org","comment_author_url":"","comment_author_IP":"192.0.2.{}","comment_date":"2024-01-01 00:00:00","comment_date_gmt":"2024-01-01 00:00:00","comment_content":"Comment number {i}: thanks &amp; <em>well done</em>\nsecond line","comment_approved":"{status}","comment_agent":"Mozilla/5.0","comment_type":"comment","comment_parent":"0","user_id":"0"}}"#,
            i % 50,
            i % 250
        ));
    }
    json.push(']');
    let file = parse("big.json", &json);
    assert_eq!(file.comments.len(), 9_000);
    assert_eq!(file.count(Label::Spam), 1_000);
    assert_eq!(skipped(&file), vec![(SkipReason::Pending, 1_000)]);
    assert_keys_distinct(&file);
}

// ---------------------------------------------------------------------------------------------
// `hamgate import` through the binary: into a label log, idempotent, all or nothing.
// ---------------------------------------------------------------------------------------------

fn import_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hamgate"))
        .arg("import")
        .args(args)
        .env("HAMGATE_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn the_import_command_logs_each_label_once_and_nothing_from_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("comments.json");
    std::fs::write(&export, WP_JSON).unwrap();
    let log = dir.path().join("labels.log");
    let log_s = log.to_str().unwrap();
    let export_s = export.to_str().unwrap();

    let out = import_cli(&["--site", "blog", "--label-log", log_s, export_s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (first, _) = hamgate::labels::file::read_log(&log).unwrap();
    let expected = parse("comments.json", WP_JSON);
    assert_eq!(first.len(), expected.comments.len(), "{stdout}");
    assert!(first
        .iter()
        .all(|l| l.record.site == "blog" && l.record.check_id.starts_with("import-")));
    assert_eq!(
        first
            .iter()
            .filter(|l| l.record.label == Label::Spam)
            .count(),
        expected.count(Label::Spam)
    );
    // The log keeps the training copy, as the Feedback RPC does: never the IP.
    assert!(first.iter().all(|l| l.record.comment.ip.is_empty()));

    // Again: nothing new. Another site's import of the same file is its own.
    let out = import_cli(&["--site", "blog", "--label-log", log_s, export_s]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!(
        "0 labels written to {log_s} ({} already there)",
        expected.comments.len()
    )));
    let out = import_cli(&["--site", "other", "--label-log", log_s, export_s]);
    assert!(out.status.success());
    let (after, _) = hamgate::labels::file::read_log(&log).unwrap();
    assert_eq!(after.len(), 2 * expected.comments.len());

    // A good file beside a malformed one: an error naming the bad file, and nothing written.
    let bad = dir.path().join("broken.json");
    std::fs::write(&bad, &WP_JSON[..WP_JSON.len() / 2]).unwrap();
    let out = import_cli(&[
        "--site",
        "third",
        "--label-log",
        log_s,
        export_s,
        bad.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("broken.json"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (unchanged, _) = hamgate::labels::file::read_log(&log).unwrap();
    assert_eq!(unchanged.len(), after.len());
}

/// A WP-CLI JSON export of `n` comments, ids from `first`, every tenth spam, all posted in one
/// hour of April 2023 (long before any model hamgate ships): a real blog's history.
fn old_history(first: usize, n: usize) -> String {
    let mut json = String::from("[");
    for i in first..first + n {
        if i > first {
            json.push(',');
        }
        let (status, content) = if i % 10 == 0 {
            (
                "spam",
                format!("Cheap replica watches and pills, best prices, order now at http://pills{i}.example/shop"),
            )
        } else {
            (
                "1",
                format!(
                    "Thanks for the write-up on borrow checking, part {i} cleared it up for me"
                ),
            )
        };
        json.push_str(&format!(
            r#"{{"comment_ID":"{i}","comment_author":"Reader {i}","comment_author_email":"","comment_author_url":"","comment_author_IP":"192.0.2.{}","comment_date_gmt":"2023-04-05 09:{:02}:{:02}","comment_content":"{content}","comment_approved":"{status}","comment_agent":"Mozilla/5.0","comment_type":"comment","comment_parent":"0"}}"#,
            i % 250,
            (i / 60) % 60,
            i % 60
        ));
    }
    json.push(']');
    json
}

/// Labels the sites' layers of the server at `server` have learned (GetModelInfo).
async fn site_labels(server: &common::TestServer) -> u64 {
    let mut client = server.client().await;
    tokio::time::timeout(
        Duration::from_secs(10),
        // The admin key; an open service takes any key.
        client.get_model_info(with_key(
            hamgate::grpc::pb::GetModelInfoRequest {},
            ADMIN_KEY,
        )),
    )
    .await
    .expect("GetModelInfo within 10 s")
    .expect("GetModelInfo")
    .into_inner()
    .site_labels
}

/// Regression: imported history was logged with its own post dates, so a model made later took
/// it for labels it had already learned and the layers learned none of it (and the label
/// retention would have expired it at the next start); and what was learned went through the
/// hourly online budget (200 an hour of the labels' time), which guards live feedback, not the
/// operator's own history.
#[tokio::test]
async fn old_history_imported_offline_is_learned_at_start_beyond_the_hourly_budget() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("history.json");
    let n = 300;
    std::fs::write(&export, old_history(0, n)).unwrap();
    let log = dir.path().join("labels.log");
    let out = import_cli(&[
        "--site",
        "default",
        "--label-log",
        log.to_str().unwrap(),
        export.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let budget = hamgate::config::Settings::default()
        .feedback
        .site_labels_per_hour;
    assert!(
        n as u64 > u64::from(budget),
        "the history must exceed one hour's budget"
    );

    // What the first import release wrote: the comment's post date as the label's time, no
    // `imported` flag, only the key's prefix. Still the operator's history, still learned.
    let old = 50;
    {
        use hamgate::labels::{file::FileLabelLog, LabelLog, LabelRecord};
        let (file_log, _) = FileLabelLog::open(&log).unwrap();
        for i in 0..old {
            file_log
                .append(LabelRecord {
                    site: "default".into(),
                    label: hamgate::comment::Label::Ham,
                    comment: hamgate::comment::Comment::from_content(format!(
                        "An older reader's thanks, number {i}"
                    )),
                    check_id: format!("import-{i:032x}"),
                    moderator: "import".into(),
                    reason: String::new(),
                    at: 1_680_686_553,
                    posted_at: None,
                    imported: false,
                })
                .await
                .unwrap();
        }
    }

    let mut settings = hamgate::config::Settings::default();
    settings.feedback.label_log = log.clone();
    // Retention counts from `at`; the first release's records are dated 2023 and would go.
    settings.feedback.label_retention_days = 0;
    let server = common::TestServer::start(settings).await;
    assert_eq!(site_labels(&server).await, (n + old) as u64);
}

// ---------------------------------------------------------------------------------------------
// `hamgate import --addr` against a running server: the ImportLabels RPC.
// ---------------------------------------------------------------------------------------------

const ADMIN_KEY: &str = "import-admin-key";
const SITE_KEY: &str = "import-blog-key";

/// A service with the label log in `dir`, the admin key and one site, `blog`, with its key.
fn keyed_settings(dir: &Path) -> hamgate::config::Settings {
    use hamgate::config::{hash_key, SiteSettings};
    let mut s = common::known_site_settings();
    s.feedback.label_log = dir.join("labels.log");
    s.admin_key_sha256 = Some(hash_key(ADMIN_KEY));
    s.sites.insert(
        "blog".into(),
        SiteSettings {
            key_sha256: vec![hash_key(SITE_KEY)],
            ..Default::default()
        },
    );
    s
}

fn with_key<T>(msg: T, key: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    req
}

/// The spam probability of `content` for site `blog`, as a test check (nothing learned).
async fn blog_spam_probability(server: &common::TestServer, content: &str) -> f64 {
    let mut req = common::check_req(content);
    req.is_test = true;
    let mut client = server.client().await;
    client
        .check(with_key(req, SITE_KEY))
        .await
        .expect("check")
        .into_inner()
        .spam_probability
}

/// `hamgate import --site blog --addr ADDR` with `key` in the environment, as an operator's
/// shell would have it.
fn import_to(server: &common::TestServer, key: &str, files: &[&Path]) -> std::process::Output {
    let addr = server.addr.to_string();
    let mut args = vec!["--site", "blog", "--addr", addr.as_str()];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    std::process::Command::new(env!("CARGO_BIN_EXE_hamgate"))
        .arg("import")
        .args(&args)
        .env("HAMGATE_LOG", "warn")
        .env("HAMGATE_API_KEY", key)
        .output()
        .unwrap()
}

fn log_len(path: &Path) -> usize {
    if !path.exists() {
        return 0;
    }
    hamgate::labels::file::read_log(path).unwrap().0.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_into_a_running_server_learns_the_history_once_and_only_for_the_admin() {
    let dir = tempfile::tempdir().unwrap();
    let settings = keyed_settings(dir.path());
    let log = settings.feedback.label_log.clone();
    let server = common::TestServer::start(settings).await;
    let n = 300;
    let export = dir.path().join("history.json");
    std::fs::write(&export, old_history(0, n)).unwrap();
    let probe = "Cheap replica watches, best prices, order now";
    let before = blog_spam_probability(&server, probe).await;
    assert_eq!(site_labels(&server).await, 0);

    // A site's key may not import: PERMISSION_DENIED, nothing logged.
    let out = import_to(&server, SITE_KEY, &[&export]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PermissionDenied"), "{stderr}");
    assert_eq!(log_len(&log), 0);

    // The admin: every label durable when the command returns, and learned at once, though
    // the comments are years old and more than a site's hourly online budget.
    let out = import_to(&server, ADMIN_KEY, &[&export]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{n} labels imported into site `blog`"))
            && stdout.contains("(0 already there); its model layer learned 300"),
        "{stdout}"
    );
    let (logged, _) = hamgate::labels::file::read_log(&log).unwrap();
    assert_eq!(logged.len(), n);
    assert!(logged.iter().all(|l| l.record.imported
        && l.record.site == "blog"
        && l.record.check_id.starts_with("import-")
        && l.record.comment.ip.is_empty()
        && l.record.posted_at.is_some_and(|t| t < 1_700_000_000)));
    assert_eq!(site_labels(&server).await, n as u64);
    let after = blog_spam_probability(&server, probe).await;
    assert!(
        after > before,
        "the imported spam did not move a comment like it towards spam: {before} -> {after}"
    );

    // Again: nothing appended, nothing learned twice.
    let out = import_to(&server, ADMIN_KEY, &[&export]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.contains("0 labels imported into site `blog`")
            && stdout.contains(&format!("({n} already there)")),
        "{stdout}"
    );
    assert_eq!(log_len(&log), n);
    assert_eq!(site_labels(&server).await, n as u64);

    // A new export beside a malformed one: an error naming the bad file, and nothing sent.
    let more = dir.path().join("more.json");
    std::fs::write(&more, old_history(n, 50)).unwrap();
    let bad = dir.path().join("broken.json");
    std::fs::write(&bad, &WP_JSON[..WP_JSON.len() / 2]).unwrap();
    let out = import_to(&server, ADMIN_KEY, &[&more, &bad]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.json"), "{stderr}");
    assert_eq!(log_len(&log), n);
    assert_eq!(site_labels(&server).await, n as u64);

    // A restarted server (which applies the default retention at start) still has the history,
    // years old as its comments are, and knows the keys from the log: the import is still
    // idempotent.
    drop(server);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let server = common::TestServer::start(keyed_settings(dir.path())).await;
    assert_eq!(site_labels(&server).await, n as u64);
    let out = import_to(&server, ADMIN_KEY, &[&export, &more]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("50 labels imported into site `blog`")
            && stdout.contains(&format!("({n} already there)")),
        "{stdout}"
    );
    assert_eq!(log_len(&log), n + 50);
    assert_eq!(site_labels(&server).await, (n + 50) as u64);
}

#[tokio::test]
async fn a_bad_label_is_invalid_argument_naming_its_field_and_index() {
    use hamgate::grpc::pb;
    let dir = tempfile::tempdir().unwrap();
    let server = common::TestServer::start(keyed_settings(dir.path())).await;
    let label = |content: &str, key: &str| pb::ImportedLabel {
        check: Some(common::check_req(content)),
        label: pb::Label::Spam as i32,
        import_key: key.into(),
        ..Default::default()
    };
    let send = |msgs: Vec<pb::ImportLabelsRequest>, key: &'static str| {
        let server = &server;
        async move {
            let mut client = server.client().await;
            client
                .import_labels(with_key(futures_util::stream::iter(msgs), key))
                .await
        }
    };
    let msg = |labels| pb::ImportLabelsRequest {
        site: "blog".into(),
        labels,
    };
    let status = send(
        vec![msg(vec![
            label("fine", "import-a"),
            label("  ", "import-b"),
        ])],
        ADMIN_KEY,
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("labels[1].check.comment.content:"),
        "{}",
        status.message()
    );
    let status = send(vec![msg(vec![label("fine", "no-prefix")])], ADMIN_KEY)
        .await
        .unwrap_err();
    assert!(
        status.message().starts_with("labels[0].import_key:"),
        "{}",
        status.message()
    );
    let mut other = msg(vec![label("fine", "import-a")]);
    other.site = "nope".into();
    let status = send(vec![other], ADMIN_KEY).await.unwrap_err();
    assert!(
        status.message().starts_with("site:"),
        "{}",
        status.message()
    );
    // Nothing of a rejected message is logged.
    assert_eq!(log_len(&dir.path().join("labels.log")), 0);
    // Even an empty stream needs the admin key.
    let status = send(vec![], SITE_KEY).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    // Two messages: the second's duplicate key is already present.
    let ok = send(
        vec![
            msg(vec![label("fine", "import-a")]),
            msg(vec![
                label("fine again", "import-a"),
                label("other", "import-b"),
            ]),
        ],
        ADMIN_KEY,
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!((ok.appended, ok.already_present, ok.learned), (2, 1, 2));
}
