# shellcheck shell=bash
# Sourced by scripts/guest-build.sh.
# mshare_bench, static, linked with libmshare.a built for the guest (the
# libmshare fragment builds it; configure it here if that one was skipped).
# Only a smoke run of a few seconds goes in the test list: `make bench`
# runs the real thing.
bench_lib=$build/libmshare-guest
if [ ! -f "$bench_lib/CMakeCache.txt" ]; then
	cmake -S "$top/libmshare" -B "$bench_lib" -DMSHARE_STATIC_TESTS=ON \
		-DMSHARE_KERNEL_HEADERS="$hdr" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$bench_lib" --target mshare_static -j"$(nproc)" >/dev/null
bench_src=$top/bench/mshare_bench.cpp
bench_bin=$out/mshare_bench
if [ ! -x "$bench_bin" ] || [ "$bench_src" -nt "$bench_bin" ] ||
	[ "$bench_lib/libmshare.a" -nt "$bench_bin" ] || [ "$hdr/linux/mshare.h" -nt "$bench_bin" ]; then
	echo "guest: c++ mshare_bench"
	${CXX:-g++} -std=c++17 -static -pthread -O2 -g -Wall -Wextra -Werror \
		-isystem "$hdr" -I "$top/libmshare/include" \
		-o "$bench_bin" "$bench_src" "$bench_lib/libmshare.a"
fi
echo "mshare_bench 120 mshare_bench --procs=1,2 --sizes=8 --samples=1 --paired=1 --tap" >>"$list"
unset bench_lib bench_src bench_bin
