//! Criterion benchmarks of HTTP/1.1 request head parsing (`http1::parse_request`).
use criterion::{Criterion, criterion_group, criterion_main};
use meshcore_fastpath::http1::{Framing, MAX_HEADERS, parse_request};
use std::hint::black_box;
use std::mem::MaybeUninit;

use thread_cpu::ThreadCpuTime;

mod thread_cpu;

const MAX_HEAD: usize = 60 * 1024;

/// What `curl http://svc-7.mesh.local/api/users/42` sends.
const CURL_GET: &[u8] = b"GET /api/users/42 HTTP/1.1\r\n\
Host: svc-7.mesh.local\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: */*\r\n\r\n";

/// A browser page load: 15 header lines, cookies and client hints included.
const BROWSER_GET: &[u8] = b"GET /catalog/items?page=2&sort=price HTTP/1.1\r\n\
Host: shop.example.com\r\n\
Connection: keep-alive\r\n\
Cache-Control: max-age=0\r\n\
sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Dest: document\r\n\
Referer: https://shop.example.com/catalog/items?page=1&sort=price\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Cookie: session=4f9c2a7e1b8d4c3a9e6f0b2d7a5c8e1f; cart=3; theme=dark\r\n\r\n";

/// Parses `head` and returns (head length, header count, keep-alive); panics unless it is a
/// complete, valid, bodiless request.
fn parse(head: &[u8]) -> (usize, usize, bool) {
    let mut storage = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let parsed = parse_request(head, &mut storage, MAX_HEAD)
        .expect("valid head")
        .expect("complete head");
    assert_eq!(parsed.framing, Framing::None);
    (parsed.head_len, parsed.headers.len(), parsed.keep_alive)
}

fn request_heads(c: &mut Criterion<ThreadCpuTime>) {
    // Check the inputs once, outside the timed loop.
    assert_eq!(parse(CURL_GET), (CURL_GET.len(), 3, true));
    assert_eq!(parse(BROWSER_GET), (BROWSER_GET.len(), 16, true));

    let mut group = c.benchmark_group("http1_parse_request");
    for (name, head) in [
        ("curl_get", CURL_GET),
        ("browser_get_16_headers", BROWSER_GET),
    ] {
        group.bench_function(name, |b| b.iter(|| parse(black_box(head))));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = thread_cpu::criterion();
    targets = request_heads
}
criterion_main!(benches);
