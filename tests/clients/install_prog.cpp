// install_prog.cpp: the C++ twin of install_prog.c, on the installed
// kiln.hpp: RAII handles, an exception with its code, views over vectors.
#include <kiln.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    try {
        kiln::options dead;
        dead.address = "ipc:///nonexistent/kiln/kilnd.sock";
        kiln::connection nope(dead);
        std::fprintf(stderr, "install_prog: a dead address connected\n");
        return 1;
    } catch (const kiln::error &e) {
        if (e.code() != KILN_ECONNECT)
            return std::fprintf(stderr, "install_prog: %s\n", e.what()), 1;
    }
    kiln::options o;
    o.address = argv[1];
    kiln::connection c(o);
    kiln::graph g(c);
    std::vector<double> xs{1, 4, 9};
    kiln::var y = kiln::sqrt(g.array(xs, {3}));
    g.keep(y);
    g.submit();
    std::vector<double> v = c.fetch(y.id(), 10000).to_vector<double>();
    if (v != std::vector<double>{1, 2, 3})
        return std::fprintf(stderr, "install_prog: wrong values\n"), 1;
    return 0;
}
