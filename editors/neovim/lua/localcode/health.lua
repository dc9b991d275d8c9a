-- :checkhealth localcode
local M = {}

local health = vim.health or require("health")
local start = health.start or health.report_start
local ok = health.ok or health.report_ok
local warn = health.warn or health.report_warn
local error = health.error or health.report_error
local info = health.info or health.report_info

local function check_neovim()
  if vim.fn.has("nvim-0.11") == 1 then
    ok("Neovim " .. tostring(vim.version()) .. ": vim.lsp.config/vim.lsp.enable")
  elseif vim.fn.has("nvim-0.8") == 1 then
    warn("Neovim " .. tostring(vim.version()) .. ": supported through vim.lsp.start; 0.11+ recommended")
  else
    warn("Neovim older than 0.8: supported through vim.lsp.start_client only")
  end
  if vim.lsp.inline_completion then
    ok("inline completion: native vim.lsp.inline_completion")
  else
    ok("inline completion: localcode ghost text (extmarks); accept with <Plug>(localcode-accept)")
  end
end

local function check_server_command()
  local config = require("localcode.config")
  local cmd = config.server_cmd(config.options, false)
  local exe = cmd[1]
  if vim.fn.executable(exe) == 1 then
    ok("server command: " .. table.concat(cmd, " ") .. " (" .. vim.fn.exepath(exe) .. ")")
  else
    error("server executable not found: " .. exe, {
      "from a localcode checkout: `make demo` (a .venv with the server), or "
        .. "`pipx install '.[qwen-1.5b]'` / `uv tool install '.[qwen-1.5b]'` (puts `localcode` on PATH)",
      "or set require('localcode').setup({ cmd = { '/path/to/localcode', 'serve' } })",
      "or setup({ python = '/path/to/venv/bin/python' })",
    })
    return
  end
  local version_cmd = {}
  for _, arg in ipairs(cmd) do
    if arg == "serve" then
      break
    end
    table.insert(version_cmd, arg)
  end
  table.insert(version_cmd, "--version")
  local out = vim.fn.system(version_cmd)
  if vim.v.shell_error == 0 then
    ok("version: " .. vim.trim(out))
  else
    error("`" .. table.concat(version_cmd, " ") .. "` failed: " .. vim.trim(out))
  end
end

local function check_trust()
  local config = require("localcode.config")
  local root = config.find_root(0)
  local file = root .. "/localcode.toml"
  if vim.fn.filereadable(file) == 1 then
    if config.project_trusted(root) then
      ok("project " .. root .. " is trusted: verification may run its tests and linters")
    else
      warn("project " .. root .. " is not trusted: parse-only verification", {
        "run :trust on " .. file .. " (or open it and answer the prompt) to allow running its tests",
      })
    end
  else
    info("no localcode.toml in " .. root .. " (defaults; trusted = "
      .. tostring(config.options.trust_without_config == true) .. ")")
  end
end

local function check_client()
  local client = require("localcode.util").get_client(vim.api.nvim_get_current_buf())
    or require("localcode.util").clients()[1]
  if not client then
    info("no localcode client running (open a file of a configured filetype)")
    return
  end
  ok("client " .. client.id .. " attached, root " .. tostring(client.root_dir or client.config.root_dir))
  local caps = client.server_capabilities or {}
  local provider = caps.executeCommandProvider or {}
  info("server commands: " .. table.concat(provider.commands or {}, ", "))
  if caps.inlineCompletionProvider then
    ok("server offers textDocument/inlineCompletion")
  else
    warn("server does not offer textDocument/inlineCompletion: ghost text is off")
  end
  if not vim.tbl_contains(provider.commands or {}, "localcode.health") then
    return
  end
  local params = { command = "localcode.health", arguments = {} }
  local response
  if vim.fn.has("nvim-0.11") == 1 then
    response = client:request_sync("workspace/executeCommand", params, 20000, 0)
  else
    response = client.request_sync("workspace/executeCommand", params, 20000, 0)
  end
  if not response then
    warn("localcode.health did not answer within 20 s")
  elseif response.err then
    error("localcode.health failed: " .. (response.err.message or vim.inspect(response.err)))
  else
    local result = response.result
    if type(result) == "table" and type(result.checks) == "table" then
      -- the server's doctor report: {ok, checks = {{name, ok, detail, required, hint}}, ...}
      for _, check in ipairs(result.checks) do
        local line = tostring(check.name) .. ": " .. tostring(check.detail)
        if check.ok then
          ok(line)
        elseif check.required then
          error(line, check.hint ~= "" and { check.hint } or nil)
        else
          warn(line, check.hint ~= "" and { check.hint } or nil)
        end
      end
    else
      info(vim.inspect(result))
    end
    ok("localcode.health answered")
  end
end

function M.check()
  start("localcode: Neovim")
  check_neovim()
  start("localcode: server")
  check_server_command()
  check_trust()
  start("localcode: running client")
  check_client()
end

return M
