// The guard registry in include/aio/detail/release_guard.hpp: every live guard is
// disowned when its primitive goes, whether it sits in the registry's slot or in its
// list, and moving a guard moves its registration.

#include <aio/detail/release_guard.hpp>

#include <memory>
#include <utility>
#include <vector>

#include "support/catch.hpp"

namespace {

// A primitive with a counter in place of a lock's state.
class counting_primitive {
public:
    explicit counting_primitive(int& released) : released_(released) {}
    void release() { ++released_; }
    aio::detail::release_guard<counting_primitive> guard() { return aio::detail::release_guard<counting_primitive>(*this); }

private:
    template <class>
    friend class aio::detail::release_guard;

    int& released_;
    aio::detail::guard_registry<counting_primitive> guards_;
};

}  // namespace

TEST_CASE("guards release their primitive once each, in the slot or in the list, moved or not") {
    int released = 0;
    counting_primitive p(released);
    {
        auto first = p.guard();   // the slot
        auto second = p.guard();  // the list
        auto third = p.guard();
        auto moved_first = std::move(first);
        auto moved_second = std::move(second);
        REQUIRE_FALSE(first.owns());
        REQUIRE(moved_first.owns());
        moved_second.release();
        REQUIRE(released == 1);
        auto fourth = p.guard();
        REQUIRE(released == 1);
    }
    REQUIRE(released == 4);
}

TEST_CASE("destroying the primitive disowns every live guard, so none releases dead memory") {
    int released = 0;
    auto p = std::make_unique<counting_primitive>(released);
    std::vector<aio::detail::release_guard<counting_primitive>> guards;
    for (int i = 0; i < 5; ++i) guards.push_back(p->guard());  // reallocation moves them
    guards.erase(guards.begin());                               // the slot's guard released
    REQUIRE(released == 1);
    p.reset();
    for (auto& g : guards) REQUIRE_FALSE(g.owns());
    guards.clear();
    REQUIRE(released == 1);
}

TEST_CASE("after the slot's guard goes, a new guard takes the slot and the list's guards stay registered") {
    int released = 0;
    auto p = std::make_unique<counting_primitive>(released);
    auto a = p->guard();
    auto b = p->guard();
    a.release();
    auto c = p->guard();
    p.reset();
    REQUIRE_FALSE(b.owns());
    REQUIRE_FALSE(c.owns());
    REQUIRE(released == 1);
}
