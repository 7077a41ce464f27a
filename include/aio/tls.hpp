#pragma once
// TLS for aio's streams (asyncio's ssl= arguments and StreamWriter.start_tls), on
// OpenSSL. Opt-in: link the CMake target aio::tls; nothing else in aio includes this.
//
//   aio::ssl_context ctx = aio::ssl_context::client();
//   auto [reader, writer] = co_await aio::open_connection("example.com", 443, {.ssl = ctx});
//   writer.write("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
//
//   aio::ssl_context server_ctx = aio::ssl_context::server();
//   server_ctx.load_cert_chain("cert.pem", "key.pem");
//   aio::server srv = co_await aio::start_server(handle, "127.0.0.1", 8443, {.ssl = server_ctx});
//
// aio/tls/ssl_context.hpp   the context (Python's ssl.SSLContext), tls_version, verify
// aio/tls/ssl_error.hpp     ssl_error, ssl_eof_error, ssl_certificate_error
// aio/tls/ssl_object.hpp    ssl_object, tls_cipher, peer_certificate (get_extra_info's TLS keys)
//
// The streams' TLS semantics (handshake and shutdown timeouts, close_notify, the
// EOF without one) are told in aio/net/streams.hpp, server.hpp and stream_writer.hpp.

#include "tls/ssl_context.hpp"
#include "tls/ssl_error.hpp"
#include "tls/ssl_object.hpp"
