/*
 * pvlua: the host that runs the pure-Lua tests of the modules in scripts/.
 *
 *   pvlua SCRIPTS_DIR TEST.lua
 *
 * It opens the standard libraries, points package.path at SCRIPTS_DIR
 * (the modules under test) and at the test file's own directory (for the
 * shared helper tests/lua/check.lua), disables C modules, and runs TEST.lua
 * in protected mode with a traceback handler (as lua.c's docall/msghandler).
 * Exit status: 0 when the script returns normally, 1 when it raises an
 * error (a failed check raises at the end), 2 on a usage error.
 * It knows nothing of pvwatch's engine and links only against Lua.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stdio.h>
#include <string.h>

/* Adds a traceback to an error message, or turns a non-string error
 * object into a message, like lua.c's msghandler. */
static int msghandler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)",
                              luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Sets package.path to "SCRIPTS/?.lua;TESTDIR/?.lua" and package.cpath to
 * "", so that a test can load nothing but the modules under test and its
 * helper.  Runs in protected mode because it allocates. */
static int set_paths(lua_State *L)
{
    const char *scripts = luaL_checkstring(L, 1);
    const char *test = luaL_checkstring(L, 2);
    const char *slash = strrchr(test, '/');

    lua_getglobal(L, "package");
    lua_pushstring(L, scripts);
    lua_pushliteral(L, "/?.lua;");
    if (slash != NULL)
        lua_pushlstring(L, test, (size_t)(slash - test));
    else
        lua_pushliteral(L, ".");
    lua_pushliteral(L, "/?.lua");
    lua_concat(L, 4);
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
    return 0;
}

int main(int argc, char **argv)
{
    lua_State *L;
    int status;

    if (argc != 3) {
        fprintf(stderr, "usage: pvlua SCRIPTS_DIR TEST.lua\n");
        return 2;
    }
    L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "pvlua: cannot create Lua state: out of memory\n");
        return 1;
    }
    luaL_openlibs(L);

    lua_pushcfunction(L, msghandler);
    lua_pushcfunction(L, set_paths);
    lua_pushstring(L, argv[1]);
    lua_pushstring(L, argv[2]);
    status = lua_pcall(L, 2, 0, 1);
    if (status == LUA_OK) {
        status = luaL_loadfile(L, argv[2]);
        if (status == LUA_OK)
            status = lua_pcall(L, 0, 0, 1);
    }
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "pvlua: %s\n", msg != NULL ? msg : "(no message)");
    }
    lua_close(L);
    return status == LUA_OK ? 0 : 1;
}
