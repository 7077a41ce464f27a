#pragma once
// OpenSSL's error queue as aio's exceptions, worded as Python's ssl module words them:
// "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch, ...".

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <exception>
#include <string>

#include "../../errors.hpp"
#include "../ssl_error.hpp"

namespace aio::detail {

// Python's short library names.
inline std::string ssl_library_name(unsigned long code) {
    switch (ERR_GET_LIB(code)) {
    case ERR_LIB_SSL: return "SSL";
    case ERR_LIB_X509: return "X509";
    case ERR_LIB_X509V3: return "X509V3";
    case ERR_LIB_PEM: return "PEM";
    case ERR_LIB_ASN1: return "ASN1";
    case ERR_LIB_EVP: return "EVP";
    case ERR_LIB_BIO: return "BIO";
    case ERR_LIB_SYS: return "SYS";
    case ERR_LIB_RSA: return "RSA";
    case ERR_LIB_EC: return "EC";
    case ERR_LIB_PKCS12: return "PKCS12";
    default: {
        const char* lib = ERR_lib_error_string(code);
        return lib ? lib : "OpenSSL";
    }
    }
}

// A reason's mnemonic, from its text ("no shared cipher" -> "NO_SHARED_CIPHER").
inline std::string ssl_reason_mnemonic(const std::string& text) {
    std::string out;
    for (const char c : text) out += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : '_';
    return out;
}

// What the queue's first error (the cause; the later ones are the callers' "PEM lib",
// "system lib") says; the queue is emptied. `context` (may be empty) goes first.
inline std::exception_ptr ssl_queue_error(const std::string& context) {
    unsigned long last = 0;
    int system_errno = 0;
    while (const unsigned long code = ERR_get_error()) {
        if (last == 0) last = code;
        if (ERR_GET_LIB(code) == ERR_LIB_SYS && system_errno == 0) system_errno = ERR_GET_REASON(code);
    }
    const std::string prefix = context.empty() ? std::string() : context + ": ";
    if (last == 0) return std::make_exception_ptr(ssl_error(prefix + "unknown error (OpenSSL left no reason)", "SSL", "UNKNOWN"));
    if (system_errno != 0)  // a file that could not be read: Python's OSError
        return std::make_exception_ptr(ssl_error(prefix + "[Errno " + std::to_string(system_errno) + "] " + std::strerror(system_errno),
                                                 "SYS", "SYSCALL", system_errno));
    const std::string library = ssl_library_name(last);
    std::string text;
    if (ERR_GET_LIB(last) == ERR_LIB_SYS) {
        text = std::strerror(ERR_GET_REASON(last));
    } else if (const char* r = ERR_reason_error_string(last)) {
        text = r;
    } else {
        text = "error " + std::to_string(ERR_GET_REASON(last));
    }
    const std::string reason = ERR_GET_LIB(last) == ERR_LIB_SYS ? std::string("SYSCALL") : ssl_reason_mnemonic(text);
    if (ERR_GET_LIB(last) == ERR_LIB_SSL && ERR_GET_REASON(last) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
        return std::make_exception_ptr(ssl_eof_error(prefix + "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol",
                                                     "SSL", "UNEXPECTED_EOF_WHILE_READING"));
    return std::make_exception_ptr(ssl_error(prefix + "[" + library + ": " + reason + "] " + text, library, reason,
                                             system_errno != 0 ? system_errno : EPROTO));
}

[[noreturn]] inline void throw_ssl_queue_error(const std::string& context) { std::rethrow_exception(ssl_queue_error(context)); }

// What a failed SSL_do_handshake / SSL_read / SSL_shutdown on `ssl` means (`code` is
// SSL_get_error's answer): a refused certificate names the reason verification gave.
inline std::exception_ptr ssl_call_error(SSL* ssl, int code, bool eof, const std::string& hostname) {
    if (code == SSL_ERROR_SSL) {
        const unsigned long last = ERR_peek_last_error();
        if (ERR_GET_LIB(last) == ERR_LIB_SSL && ERR_GET_REASON(last) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
            ERR_clear_error();
            const long verify = SSL_get_verify_result(ssl);
            std::string why;
            if (verify == X509_V_ERR_HOSTNAME_MISMATCH)
                why = "Hostname mismatch, certificate is not valid for '" + hostname + "'.";
            else if (verify == X509_V_ERR_IP_ADDRESS_MISMATCH)
                why = "IP address mismatch, certificate is not valid for '" + hostname + "'.";
            else
                why = X509_verify_cert_error_string(verify);
            return std::make_exception_ptr(
                ssl_certificate_error("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: " + why, verify, why));
        }
        return ssl_queue_error({});
    }
    ERR_clear_error();
    if (code == SSL_ERROR_SYSCALL && eof)
        return std::make_exception_ptr(
            ssl_eof_error("[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol", "SSL", "UNEXPECTED_EOF_WHILE_READING"));
    return std::make_exception_ptr(ssl_error("[SSL] TLS failure (SSL_get_error " + std::to_string(code) + ")", "SSL", "UNKNOWN"));
}

}  // namespace aio::detail
