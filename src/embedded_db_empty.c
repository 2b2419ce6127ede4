/* src/embedded_db_empty.c - what tools/embed_db.c writes for no database,
 * for cross builds that cannot run it (src/meson.build). */
const char kiln_embedded_db_json[] = "";
