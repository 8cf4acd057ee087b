/* CRC32C (Castagnoli), as Kafka's record batches use it. */
#ifndef CHRONIK_PERF_CRC32C_H
#define CHRONIK_PERF_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Fill the tables and pick the implementation for this CPU. Idempotent. */
void cp_crc32c_init(void);

/* Continue a finished CRC32C `crc` (0 to start) over buf[0:len]. Thread safe after init. */
uint32_t cp_crc32c(uint32_t crc, const uint8_t *buf, size_t len);

/* Name of the implementation in use: "sse4.2", "armv8-crc" or "software". */
const char *cp_crc32c_impl(void);

/* The portable implementation, whatever the CPU (for tests). */
uint32_t cp_crc32c_software(uint32_t crc, const uint8_t *buf, size_t len);

#endif
