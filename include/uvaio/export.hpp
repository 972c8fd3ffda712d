#pragma once

// The library is built with hidden visibility (gnu_symbol_visibility: 'hidden');
// UVAIO_API marks what it exports. Exception types and every class whose typeid
// user code may compare carry it too, so that `catch` in user code matches the
// type thrown inside the library.
#if defined(_WIN32)
#if defined(UVAIO_BUILDING)
#define UVAIO_API __declspec(dllexport)
#else
#define UVAIO_API __declspec(dllimport)
#endif
#else
#define UVAIO_API __attribute__((visibility("default")))
#endif
