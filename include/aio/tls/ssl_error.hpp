#pragma once
// TLS errors (Python's ssl.SSLError family), thrown by aio::ssl_context and by the
// reads, handshakes and shutdowns of TLS streams.
//
//   os_error
//     ssl_error               ssl.SSLError: OpenSSL's reason, "[SSL: NO_SHARED_CIPHER] no shared cipher"
//       ssl_eof_error         ssl.SSLEOFError: the connection ended without close_notify
//       ssl_certificate_error ssl.SSLCertVerificationError: verify_code(), verify_message()
//
// what() is the message alone, as Python prints it (without "(_ssl.c:NNNN)");
// error_number() is EPROTO for a protocol failure and the system's errno for a file
// that could not be read (Python's FileNotFoundError there is an os_error here).
// library() and reason() are Python's SSLError.library and .reason ("SSL",
// "CERTIFICATE_VERIFY_FAILED"). Copies share the message and never throw.

#include <cerrno>
#include <memory>
#include <string>
#include <utility>

#include "../os_error.hpp"

namespace aio {

class ssl_error : public os_error {
public:
    explicit ssl_error(const std::string& message, std::string library = {}, std::string reason = {}, int error_number = EPROTO)
        : os_error(error_number, message),
          data_(std::make_shared<const data>(data{message, std::move(library), std::move(reason)})) {}
    const char* what() const noexcept override { return data_->message.c_str(); }
    const std::string& library() const noexcept { return data_->library; }
    const std::string& reason() const noexcept { return data_->reason; }

private:
    struct data {
        std::string message, library, reason;
    };
    std::shared_ptr<const data> data_;
};

// The peer closed the connection without close_notify: what was read may have been
// cut short ("EOF occurred in violation of protocol").
class ssl_eof_error : public ssl_error {
public:
    using ssl_error::ssl_error;
};

// The peer's certificate was refused: verify_code() is OpenSSL's X509_V_ERR_* code,
// verify_message() its explanation ("Hostname mismatch, certificate is not valid for
// 'example.com'.", "self-signed certificate", "unable to get local issuer certificate").
class ssl_certificate_error : public ssl_error {
public:
    ssl_certificate_error(const std::string& message, long verify_code, std::string verify_message)
        : ssl_error(message, "SSL", "CERTIFICATE_VERIFY_FAILED"),
          verify_code_(verify_code),
          verify_message_(std::make_shared<const std::string>(std::move(verify_message))) {}
    long verify_code() const noexcept { return verify_code_; }
    const std::string& verify_message() const noexcept { return *verify_message_; }

private:
    long verify_code_;
    std::shared_ptr<const std::string> verify_message_;
};

}  // namespace aio
