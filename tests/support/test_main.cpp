// The Boost.Test main shared by every shoal test executable.
#define BOOST_TEST_MODULE shoal
#include <boost/test/unit_test.hpp>
