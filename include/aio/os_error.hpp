#pragma once
// Errors from the operating system (Python's OSError and its ConnectionError family):
// every I/O call of aio reports a failed system call as one of these, carrying errno.
//
//   os_error                      any failed system call (errno in code().value())
//     connection_error            Python's ConnectionError
//       connection_refused_error  ECONNREFUSED
//       connection_reset_error    ECONNRESET
//       connection_aborted_error  ECONNABORTED
//       broken_pipe_error         EPIPE, ESHUTDOWN
//
// They derive from std::system_error, so `e.code() == std::errc::connection_refused`
// works as it does for any C++ system error; what() names the call and the error, as
// std::system_error's do: "aio: connect to 127.0.0.1:9: Connection refused".

#include <cerrno>
#include <string>
#include <system_error>

namespace aio {

class os_error : public std::system_error {
public:
    os_error(int error_number, const std::string& what)
        : std::system_error(error_number, std::generic_category(), what) {}
    // errno of the failed call (Python's OSError.errno).
    int error_number() const noexcept { return code().value(); }
};

class connection_error : public os_error {
public:
    using os_error::os_error;
};
class connection_refused_error : public connection_error {
public:
    using connection_error::connection_error;
};
class connection_reset_error : public connection_error {
public:
    using connection_error::connection_error;
};
class connection_aborted_error : public connection_error {
public:
    using connection_error::connection_error;
};
class broken_pipe_error : public connection_error {
public:
    using connection_error::connection_error;
};

namespace detail {

// Throws the os_error that fits `error_number`, named after `what` (the failed call).
[[noreturn, gnu::cold]] inline void throw_os_error(int error_number, const std::string& what) {
    switch (error_number) {
    case ECONNREFUSED: throw connection_refused_error(error_number, what);
    case ECONNRESET: throw connection_reset_error(error_number, what);
    case ECONNABORTED: throw connection_aborted_error(error_number, what);
    case EPIPE:
    case ESHUTDOWN: throw broken_pipe_error(error_number, what);
    default: throw os_error(error_number, what);
    }
}

// The same for the errno a call just left.
[[noreturn, gnu::cold]] inline void throw_errno(const std::string& what) { throw_os_error(errno, what); }

}  // namespace detail
}  // namespace aio
