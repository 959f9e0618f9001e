/*
 * A stand-in for bcryptprimitives.dll, for running the Windows build under
 * wine 8 (Debian 12's), which lacks this DLL. Rust's standard library (1.78+)
 * gets its random bytes (HashMap seeds, among others) from `ProcessPrng` in
 * bcryptprimitives.dll, which every Windows 10+ has; without it a binary
 * fails to start under that wine. scripts/wine-run builds this with mingw and
 * puts it next to each executable it runs (Windows looks there first). It
 * forwards to RtlGenRandom (SystemFunction036 in advapi32), which wine has.
 * Never shipped: a real Windows has the real DLL.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
