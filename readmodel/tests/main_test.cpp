#define BOOST_TEST_MODULE rill_readmodel
#include <boost/test/unit_test.hpp>
