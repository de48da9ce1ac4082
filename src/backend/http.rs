//! The connection layer: sockets (plain TCP or rustls), their arrival clock, and
//! a client with a pool of keep-alive connections.
//!
//! Holds [`TimedStream`] (a socket that stamps when each read's bytes arrived),
//! [`Io`] (plain or TLS), [`ReadClock`] and [`HttpClient`] (connect, idle pool,
//! simple GET/POST side requests). The HTTP/1.1 exchange itself is
//! [`super::h1::Conn`], read in the task of the request using it, so a body piece
//! and the read that carried it are handled in the same poll: the timestamp is
//! the moment the bytes left the kernel, not when some other task got to them.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

pub use super::h1::Conn;
use super::h1::{H1Error, Request};
use super::{BaseUrl, Scheme};
use crate::clock;
use crate::metrics::{ErrorKind, RequestError};

/// Arrival-time source and read-lag statistics shared by a client's connections.
#[derive(Debug)]
pub struct ReadClock {
    /// How late reads were: user-space read time minus kernel arrival time (µs).
    pub lag_us: Mutex<hdrhistogram::Histogram<u64>>,
    /// Whether the kernel supplied arrival timestamps for at least one read.
    pub kernel: AtomicBool,
}

impl Default for ReadClock {
    fn default() -> Self {
        ReadClock {
            lag_us: Mutex::new(crate::metrics::stats::micros_histogram()),
            kernel: AtomicBool::new(false),
        }
    }
}

/// A TCP stream that stamps the arrival time of every read that returned data.
///
/// On 64-bit Linux the socket has `SO_TIMESTAMPNS` on and is read with `recvmsg`:
/// the stamp is the kernel's receive time of the data (converted to the monotonic
/// [`clock`]), so a busy or sleeping client thread does not delay it; the difference
/// to the time of the read itself is the read lag reported in client health.
/// Elsewhere, or if the kernel gives no stamp, it is the time the read returned.
pub struct TimedStream {
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    inner: tokio::io::unix::AsyncFd<std::net::TcpStream>,
    #[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
    inner: TcpStream,
    last_read: Arc<AtomicU64>,
    clock: Arc<ReadClock>,
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod kstamp {
    /// `SO_TIMESTAMPNS` (= `SCM_TIMESTAMPNS`) in asm-generic/socket.h (x86_64, aarch64, riscv64).
    pub const SO_TIMESTAMPNS: libc::c_int = 35;

    /// Asks the kernel to timestamp received data.
    pub fn enable(fd: std::os::fd::RawFd) -> bool {
        let on: libc::c_int = 1;
        // SAFETY: setsockopt with a valid fd and a c_int option value.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                SO_TIMESTAMPNS,
                &on as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            ) == 0
        }
    }

    /// `recvmsg` into `buf`; returns the byte count and the kernel's receive time
    /// (CLOCK_REALTIME nanoseconds) if it sent one.
    pub fn recv(fd: std::os::fd::RawFd, buf: &mut [u8]) -> std::io::Result<(usize, Option<i128>)> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        let mut control = [0u64; 16];
        // SAFETY: msghdr points at live, correctly sized buffers for the whole call;
        // cmsg parsing uses the libc macros on the buffer the kernel filled.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
            msg.msg_controllen = std::mem::size_of_val(&control) as _;
            let n = libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT);
            if n < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut ts = None;
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == SO_TIMESTAMPNS {
                    let t: libc::timespec =
                        std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                    ts = Some(t.tv_sec as i128 * 1_000_000_000 + t.tv_nsec as i128);
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
            Ok((n as usize, ts))
        }
    }

    use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

    /// CLOCK_REALTIME − monotonic clock, in ns, and when it was measured.
    static OFFSET: AtomicI64 = AtomicI64::new(0);
    static OFFSET_AT: AtomicU64 = AtomicU64::new(0);

    /// The realtime − monotonic offset: measured by bracketing a realtime read
    /// between two monotonic reads (best of 5), refreshed once a second so a step
    /// of the wall clock is picked up. Both clocks are slewed alike by NTP, so the
    /// offset only changes on steps; one offset for all reads keeps their order.
    pub fn offset_ns(now_mono: u64) -> i128 {
        let at = OFFSET_AT.load(Ordering::Relaxed);
        if at != 0 && now_mono.saturating_sub(at) < 1_000_000_000 {
            return OFFSET.load(Ordering::Relaxed) as i128;
        }
        let mut best = (u64::MAX, 0i128);
        for _ in 0..5 {
            let a = crate::clock::now_ns();
            let r = realtime_ns();
            let b = crate::clock::now_ns();
            if b - a < best.0 {
                best = (b - a, r - (a as i128 + (b - a) as i128 / 2));
            }
        }
        OFFSET.store(best.1 as i64, Ordering::Relaxed);
        OFFSET_AT.store(now_mono.max(1), Ordering::Relaxed);
        best.1
    }

    /// CLOCK_REALTIME now, in nanoseconds.
    pub fn realtime_ns() -> i128 {
        // SAFETY: clock_gettime writes into the local timespec.
        unsafe {
            let mut t: libc::timespec = std::mem::zeroed();
            libc::clock_gettime(libc::CLOCK_REALTIME, &mut t);
            t.tv_sec as i128 * 1_000_000_000 + t.tv_nsec as i128
        }
    }
}

impl TimedStream {
    /// Wraps a connected `tcp`, turning kernel receive timestamps on where supported.
    pub fn new(
        tcp: TcpStream,
        last_read: Arc<AtomicU64>,
        clock: Arc<ReadClock>,
    ) -> std::io::Result<TimedStream> {
        #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
        {
            use std::os::fd::AsRawFd;
            let std_tcp = tcp.into_std()?;
            std_tcp.set_nonblocking(true)?;
            kstamp::enable(std_tcp.as_raw_fd());
            // SAFETY: the TcpStream owns a valid descriptor, which is neither replaced nor
            // closed while the AsyncFd owns it.
            let inner = unsafe { tokio::io::unix::AsyncFd::register(std_tcp)? };
            Ok(TimedStream {
                inner,
                last_read,
                clock,
            })
        }
        #[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
        Ok(TimedStream {
            inner: tcp,
            last_read,
            clock,
        })
    }

    fn stamp(&self, kernel_real_ns: Option<i128>) {
        let now = clock::now_ns();
        // A connection's arrival times never go backwards.
        let prev = self.last_read.load(Ordering::Relaxed);
        let at = match kernel_real_ns {
            #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
            Some(k) => {
                let mono = (k - kstamp::offset_ns(now)).clamp(0, now as i128) as u64;
                if !self.clock.kernel.load(Ordering::Relaxed) {
                    self.clock.kernel.store(true, Ordering::Relaxed);
                }
                let _ = self
                    .clock
                    .lag_us
                    .lock()
                    .unwrap()
                    .record(((now - mono) / 1000).max(1));
                mono
            }
            _ => now,
        };
        self.last_read.store(at.max(prev), Ordering::Relaxed);
    }
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
impl AsyncRead for TimedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        use std::os::fd::AsRawFd;
        let this = self.get_mut();
        loop {
            let mut guard = std::task::ready!(this.inner.poll_read_ready(cx))?;
            // SAFETY: recvmsg only writes into the unfilled part; we then mark exactly
            // the bytes it wrote as initialized.
            let dst = unsafe {
                let u = buf.unfilled_mut();
                std::slice::from_raw_parts_mut(u.as_mut_ptr() as *mut u8, u.len())
            };
            let len = dst.len();
            match guard.try_io(|fd| kstamp::recv(fd.as_raw_fd(), dst)) {
                Ok(Ok((n, ts))) => {
                    // A short read drained the socket (epoll is edge-triggered), so
                    // the next read waits for new data instead of trying and failing.
                    if n > 0 && n < len {
                        guard.clear_ready();
                    }
                    // SAFETY: the kernel wrote n bytes into the unfilled region.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    if n > 0 {
                        this.stamp(ts);
                    }
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
impl AsyncWrite for TimedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        use std::io::Write;
        loop {
            let mut guard = std::task::ready!(self.inner.poll_write_ready(cx))?;
            if let Ok(r) = guard.try_io(|s| s.get_ref().write(buf)) {
                return Poll::Ready(r);
            }
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        use std::io::Write;
        loop {
            let mut guard = std::task::ready!(self.inner.poll_write_ready(cx))?;
            if let Ok(r) = guard.try_io(|s| s.get_ref().write_vectored(bufs)) {
                return Poll::Ready(r);
            }
        }
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.inner.get_ref().shutdown(std::net::Shutdown::Write))
    }
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
impl AsyncRead for TimedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            if buf.filled().len() > before {
                this.stamp(None);
            }
        }
        r
    }
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
impl AsyncWrite for TimedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A plain or TLS socket.
pub enum Io {
    /// Plain TCP.
    Plain(TimedStream),
    /// TLS over TCP (the timing wrapper sits under TLS, at the socket).
    Tls(Box<tokio_rustls::client::TlsStream<TimedStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A client for one server: resolved addresses, optional TLS, and a pool of idle
/// keep-alive connections.
pub struct HttpClient {
    base: BaseUrl,
    addrs: Vec<SocketAddr>,
    tls: Option<(TlsConnector, rustls::pki_types::ServerName<'static>)>,
    idle: Mutex<Vec<Conn>>,
    connect_timeout: Duration,
    /// Arrival-time source and read-lag statistics of this client's connections.
    pub read_clock: Arc<ReadClock>,
}

/// Turns a failed exchange into a request error: `context` says what was being
/// done; a reply that is not HTTP is a protocol error, the rest connection errors.
pub fn h1_error(context: &str, e: &H1Error) -> RequestError {
    let kind = match e {
        H1Error::Parse(_) => ErrorKind::Protocol,
        _ => ErrorKind::Connection,
    };
    RequestError::new(kind, format!("{context}: {e}"))
}

/// Accepts any server certificate (`--insecure`); handshake signatures are still
/// checked, so the connection is encrypted, just not authenticated.
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The trust store: the system's certificates (including `SSL_CERT_FILE` and
/// `SSL_CERT_DIR`), the compiled-in Mozilla roots, and the PEM file `ca_cert`.
fn root_store(ca_cert: Option<&std::path::Path>) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // Unreadable system certificates are skipped; those that load count.
    let native = rustls_native_certs::load_native_certs();
    for c in native.certs {
        let _ = roots.add(c);
    }
    if let Some(path) = ca_cert {
        use rustls::pki_types::pem::PemObject;
        let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("--ca-cert {}: cannot read it: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| {
                format!(
                    "--ca-cert {}: not a PEM certificate file: {e}",
                    path.display()
                )
            })?;
        if certs.is_empty() {
            return Err(format!(
                "--ca-cert {}: no certificate in it (expected PEM blocks: -----BEGIN CERTIFICATE-----)",
                path.display()
            ));
        }
        for c in certs {
            roots.add(c).map_err(|e| {
                format!(
                    "--ca-cert {}: a certificate is unusable: {e}",
                    path.display()
                )
            })?;
        }
    }
    Ok(roots)
}

/// Says what was wrong with a refused certificate and which flag fixes it.
fn describe_tls_error(host: &str, e: &std::io::Error) -> RequestError {
    use rustls::{CertificateError, Error as TlsError};
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<TlsError>());
    let what = match inner {
        Some(TlsError::InvalidCertificate(c)) => match c {
            CertificateError::UnknownIssuer => {
                "it is signed by an unknown CA (self-signed, or a private CA this machine does not trust)"
                    .to_string()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "it has expired".to_string()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "it is not valid yet (check this machine's clock)".to_string()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("it is not valid for the name '{host}' (wrong name; use the name the certificate was made for)")
            }
            other => format!("it was refused: {other:?}"),
        },
        Some(other) => {
            return RequestError::new(
                ErrorKind::Connection,
                format!("TLS handshake with {host} failed: {other}"),
            );
        }
        None => {
            return RequestError::new(
                ErrorKind::Connection,
                format!("TLS handshake with {host} failed: {e}"),
            );
        }
    };
    RequestError::new(
        ErrorKind::Tls,
        format!(
            "the TLS certificate of {host} was refused: {what}. Trust its CA with --ca-cert FILE (or \
             SSL_CERT_FILE), or skip the check with --insecure"
        ),
    )
}

impl HttpClient {
    /// Resolves `base`'s host and prepares TLS if needed (default certificate checks).
    pub async fn new(base: &BaseUrl) -> Result<HttpClient, String> {
        Self::with_tls(base, &super::TlsOptions::default()).await
    }

    /// Resolves `base`'s host and prepares TLS with `tls`'s certificate checks.
    pub async fn with_tls(
        base: &BaseUrl,
        tls_opts: &super::TlsOptions,
    ) -> Result<HttpClient, String> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((base.host.as_str(), base.port))
            .await
            .map_err(|e| {
                format!(
                    "cannot resolve host '{}': {e}; check --base-url/--host",
                    base.host
                )
            })?
            .collect();
        if addrs.is_empty() {
            return Err(format!(
                "host '{}' has no address; check --base-url/--host",
                base.host
            ));
        }
        // A CA file for a plain-HTTP server is a mistake in one of the two (vLLM's
        // `--insecure` is accepted either way, so pasted command lines keep working).
        if base.scheme == Scheme::Http && tls_opts.ca_cert.is_some() {
            return Err(format!(
                "--ca-cert is for HTTPS, but the server is http://{}:{}; write --base-url \
                 https://… (or drop --ca-cert)",
                base.host, base.port
            ));
        }
        let tls = if base.scheme == Scheme::Https {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?;
            let mut cfg = if tls_opts.insecure {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
                    .with_no_client_auth()
            } else {
                builder
                    .with_root_certificates(root_store(tls_opts.ca_cert.as_deref())?)
                    .with_no_client_auth()
            };
            cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = rustls::pki_types::ServerName::try_from(base.host.clone())
                .map_err(|e| format!("bad TLS server name '{}': {e}", base.host))?;
            Some((TlsConnector::from(Arc::new(cfg)), name))
        } else {
            None
        };
        Ok(HttpClient {
            base: base.clone(),
            addrs,
            tls,
            idle: Mutex::new(Vec::new()),
            connect_timeout: Duration::from_secs(30),
            read_clock: Arc::new(ReadClock::default()),
        })
    }

    /// The server's base URL.
    pub fn base(&self) -> &BaseUrl {
        &self.base
    }

    /// Opens a new connection.
    pub async fn connect(&self) -> Result<Conn, RequestError> {
        let fut = async {
            let mut last_err = None;
            for addr in &self.addrs {
                match TcpStream::connect(addr).await {
                    Ok(tcp) => return Ok(tcp),
                    Err(e) => last_err = Some(e),
                }
            }
            Err(last_err.unwrap())
        };
        let tcp = match tokio::time::timeout(self.connect_timeout, fut).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                return Err(RequestError::new(
                    ErrorKind::Connection,
                    crate::i18n::trf("cannot connect to {}: {}", &[&self.base.as_string(), &e]),
                ));
            }
            Err(_) => {
                return Err(RequestError::new(
                    ErrorKind::Connection,
                    format!(
                        "connecting to {} timed out after {:?}",
                        self.base.as_string(),
                        self.connect_timeout
                    ),
                ));
            }
        };
        let _ = tcp.set_nodelay(true);
        let last_read = Arc::new(AtomicU64::new(0));
        let timed =
            TimedStream::new(tcp, last_read.clone(), self.read_clock.clone()).map_err(|e| {
                RequestError::new(
                    ErrorKind::Connection,
                    format!("cannot set up the connection: {e}"),
                )
            })?;
        let io = match &self.tls {
            None => Io::Plain(timed),
            Some((connector, name)) => {
                let hs = connector.connect(name.clone(), timed);
                let s = match tokio::time::timeout(self.connect_timeout, hs).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return Err(describe_tls_error(&self.base.host, &e)),
                    Err(_) => {
                        return Err(RequestError::new(
                            ErrorKind::Connection,
                            format!(
                                "the TLS handshake with {} did not complete within {:?} (the server \
                                 accepted the connection but never finished the handshake; is it really https?)",
                                self.base.host, self.connect_timeout
                            ),
                        ));
                    }
                };
                Io::Tls(Box::new(s))
            }
        };
        Ok(Conn::new(io, last_read))
    }

    /// Takes an idle connection that can still be used, if any.
    pub fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap();
        while let Some(mut c) = idle.pop() {
            if c.reusable() {
                return Some(c);
            }
        }
        None
    }

    /// Returns a connection to the idle pool if it can take another request.
    pub fn checkin(&self, mut conn: Conn) {
        if conn.reusable() {
            self.idle.lock().unwrap().push(conn);
        }
    }

    /// Number of idle connections.
    pub fn idle_count(&self) -> usize {
        self.idle.lock().unwrap().len()
    }

    /// Opens `n` connections (at most 256 handshakes at a time) into the idle pool.
    /// Returns how many opened, or the first error if none did.
    pub async fn preconnect(self: &Arc<Self>, n: usize) -> Result<usize, RequestError> {
        let mut opened = 0;
        let mut first_err = None;
        let mut left = n;
        while left > 0 {
            let batch = left.min(256);
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..batch {
                let me = self.clone();
                set.spawn(async move { me.connect().await });
            }
            while let Some(r) = set.join_next().await {
                match r {
                    Ok(Ok(c)) => {
                        opened += 1;
                        self.idle.lock().unwrap().push(c);
                    }
                    Ok(Err(e)) => {
                        first_err.get_or_insert(e);
                    }
                    Err(_) => {}
                }
            }
            left -= batch;
        }
        if opened == 0 && n > 0 {
            Err(first_err.unwrap())
        } else {
            Ok(opened)
        }
    }

    /// A simple GET on a fresh connection; returns the status and body.
    pub async fn get(
        &self,
        path: &str,
        headers: &[(String, String)],
    ) -> Result<(u16, Bytes), RequestError> {
        self.simple(http::Method::GET, path, headers).await
    }

    /// A GET on a fresh connection that reports the server's `Date` header with
    /// the wall clock (Unix seconds) just before the request was written and when
    /// the response head arrived: (status, date, sent, received).
    pub async fn get_date(
        &self,
        path: &str,
        headers: &[(String, String)],
    ) -> Result<(u16, Option<String>, f64, f64), RequestError> {
        let unix = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        };
        let mut conn = self.connect().await?;
        let req = self.request(http::Method::GET, path, headers, Bytes::new())?;
        let sent = unix();
        let resp = conn
            .send(&req)
            .await
            .map_err(|e| h1_error("the request failed", &e))?;
        let received = unix();
        let date = resp
            .headers
            .get("date")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok((resp.status, date, sent, received))
    }

    /// A POST without a body on a fresh connection (vLLM's `/start_profile`).
    pub async fn post_empty(
        &self,
        path: &str,
        headers: &[(String, String)],
    ) -> Result<(u16, Bytes), RequestError> {
        self.simple(http::Method::POST, path, headers).await
    }

    /// A POST of a JSON body on a fresh connection (side requests such as
    /// `/tokenize`); returns the status and body.
    pub async fn post_json(
        &self,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), RequestError> {
        self.send(http::Method::POST, path, headers, Some(body))
            .await
    }

    async fn simple(
        &self,
        method: http::Method,
        path: &str,
        headers: &[(String, String)],
    ) -> Result<(u16, Bytes), RequestError> {
        self.send(method, path, headers, None).await
    }

    async fn send(
        &self,
        method: http::Method,
        path: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Bytes), RequestError> {
        let mut conn = self.connect().await?;
        let json = body.is_some();
        let mut req = self.request(
            method,
            path,
            headers,
            body.map(Bytes::from).unwrap_or_default(),
        )?;
        if json {
            req = req
                .header("content-type", "application/json")
                .map_err(|e| RequestError::new(ErrorKind::Protocol, e))?;
        }
        let resp = conn
            .send(&req)
            .await
            .map_err(|e| h1_error("the request failed", &e))?;
        let body = conn
            .read_to_end(usize::MAX)
            .await
            .map_err(|e| h1_error("reading the response failed", &e))?;
        Ok((resp.status, Bytes::from(body)))
    }

    /// A request to `path` on this server with a `host` header and `headers`.
    fn request(
        &self,
        method: http::Method,
        path: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<Request, RequestError> {
        let mut req = Request::new(method, self.base.path(path), body)
            .header("host", &self.base.host_header());
        for (k, v) in headers {
            req = req.and_then(|r| r.header(k, v));
        }
        req.map_err(|e| RequestError::new(ErrorKind::Protocol, e))
    }
}
