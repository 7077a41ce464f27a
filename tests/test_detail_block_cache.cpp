// The block cache in include/aio/detail/block_cache.hpp: reuse within a size class, bypassed under AddressSanitizer.

#include <aio/detail/block_cache.hpp>

#include "support/catch.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define AIO_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AIO_TEST_ASAN 1
#endif
#endif
#ifdef AIO_TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

TEST_CASE("the block cache hands a freed block of the same size class back out") {
    aio::detail::block_cache cache;
    void* a = cache.allocate(100);
    cache.deallocate(a, 100);
    void* b = cache.allocate(104);  // same size class (89..104 bytes)
    REQUIRE(b == a);
    void* big = cache.allocate(4096);  // above the cached sizes: plain operator new
    cache.deallocate(big, 4096);
    cache.deallocate(b, 104);
}

TEST_CASE("freed blocks go back to the thread's block cache, except under AddressSanitizer, which must see every free") {
    void* a = aio::detail::allocate_block(100);
    aio::detail::deallocate_block(a, 100);
#ifdef AIO_TEST_ASAN
    REQUIRE(aio::detail::bypass_block_cache);
    REQUIRE(__asan_address_is_poisoned(a));  // freed for real: a use after free is caught
#else
    REQUIRE_FALSE(aio::detail::bypass_block_cache);
    void* b = aio::detail::allocate_block(100);
    REQUIRE(b == a);
    aio::detail::deallocate_block(b, 100);
#endif
}
