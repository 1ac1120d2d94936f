#define BOOST_TEST_MODULE rill_core
#include <boost/test/unit_test.hpp>
