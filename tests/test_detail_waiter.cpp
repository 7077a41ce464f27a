// The tasks' waiter lists in include/aio/detail/waiter.hpp: arrival order, unlinking any waiter.

#include <aio/detail/waiter.hpp>

#include <vector>

#include "support/catch.hpp"

TEST_CASE("a task's waiter list keeps its waiters in the order they came and unlinks any of them") {
    using aio::detail::waiter;
    aio::detail::waiter_list list;
    waiter w[5];
    for (auto& x : w) {
        REQUIRE_FALSE(x.linked());
        list.push_back(&x);
        REQUIRE(x.linked());
    }
    list.unlink(&w[0]);  // the head
    list.unlink(&w[2]);  // the middle
    list.unlink(&w[4]);  // the tail
    REQUIRE_FALSE(w[0].linked());
    std::vector<waiter*> order;
    while (waiter* x = list.pop_front()) order.push_back(x);
    REQUIRE(order == std::vector<waiter*>{&w[1], &w[3]});
    REQUIRE(list.empty());
}
