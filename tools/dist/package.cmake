# The Debian package of cairn (docs/operations.md): `cpack -G DEB` in the
# build directory writes cairn_<version>_<arch>.deb. Included from the
# top-level CMakeLists.txt after every install rule.
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "cairn")
set(CPACK_PACKAGE_VENDOR "cairn")
set(CPACK_PACKAGE_CONTACT "cairn maintainers <cairn@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "peer-to-peer storage rollup node")
string(CONCAT CPACK_PACKAGE_DESCRIPTION
  "Storage node of the cairn rollup: erasure-coded blobs on per-shard gossip\n"
  "subnets, storage challenges on a consensus clock and replica-count proofs.\n"
  "Runs as the systemd service cairn.service (enabled, not started).")
set(CPACK_DEBIAN_FILE_NAME "DEB-DEFAULT")
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
# Debian's layout: /usr/bin, /usr/share/man; the unit and /etc/cairn are
# absolute install destinations, so the install runs under DESTDIR with the
# final prefix (the unit's ExecStart names /usr/bin/cairn).
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX "/usr")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)
# Runtime libraries: dpkg-shlibdeps derives them from what the binary links
# (the runtime halves of the -dev packages in CAIRN_APT_PACKAGES,
# tools/dev/common.sh), with the versions it was built against; a second,
# hand-kept list would drift from the build. passwd provides useradd for the
# maintainer scripts.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  "${PROJECT_SOURCE_DIR}/tools/dist/debian/conffiles;${PROJECT_SOURCE_DIR}/tools/dist/debian/postinst;${PROJECT_SOURCE_DIR}/tools/dist/debian/prerm;${PROJECT_SOURCE_DIR}/tools/dist/debian/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
