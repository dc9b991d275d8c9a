-- localcode for Neovim: the language server client, :LspLocalcode, progress and ghost text.
--
--   require("localcode").setup({ settings = { generation = { candidates = 3 } } })
--
-- Neovim 0.11+: registers the server with vim.lsp.config/vim.lsp.enable.
-- Neovim 0.8-0.10: starts it with vim.lsp.start on FileType (0.7: start_client + buf_attach_client).
local config = require("localcode.config")
local util = require("localcode.util")

local M = {}

M.ACTIONS = { "implement", "fix", "explain", "health", "cancel" }

local augroup = vim.api.nvim_create_augroup("localcode", { clear = true })
-- running: the workspace/executeCommand requests in flight, by request id ({client, bufnr, action})
local state = { progress = {}, last_message = "", running = {} }

--- The attached localcode client of a buffer (or nil).
function M.get_client(bufnr)
  return util.get_client(bufnr or vim.api.nvim_get_current_buf())
end

--- A short status for the statusline: "localcode: GENERATE 2/5" while busy, "" when idle.
function M.status()
  for _, text in pairs(state.progress) do
    return "localcode: " .. text
  end
  return ""
end

local function show(message, level)
  state.last_message = message
  vim.notify(message, level or vim.log.levels.INFO, { title = "localcode" })
end

--- Open a scratch window with the lines of an explanation or health report.
local function show_text(title, text)
  local lines = vim.split(text, "\n", { plain = true })
  if #vim.api.nvim_list_uis() == 0 then -- headless: print it
    show(title .. "\n" .. text)
    return
  end
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].bufhidden = "wipe"
  vim.bo[buf].filetype = "markdown"
  local width = math.min(100, vim.o.columns - 4)
  local height = math.min(#lines, math.floor(vim.o.lines * 0.6))
  vim.api.nvim_open_win(buf, true, {
    relative = "editor", style = "minimal", border = "rounded", title = " " .. title .. " ",
    width = width, height = math.max(1, height),
    row = math.floor((vim.o.lines - height) / 2), col = math.floor((vim.o.columns - width) / 2),
  })
  vim.keymap.set("n", "q", "<cmd>close<cr>", { buffer = buf, nowait = true })
end

--- Open `markdown` in a scratch buffer (a split beside, nothing on disk); the cursor stays put.
local function show_document(title, markdown)
  local previous = vim.api.nvim_get_current_win()
  vim.cmd("rightbelow vnew")
  local buf = vim.api.nvim_get_current_buf()
  vim.bo[buf].buftype = "nofile"
  vim.bo[buf].bufhidden = "wipe"
  vim.bo[buf].swapfile = false
  pcall(vim.api.nvim_buf_set_name, buf, "localcode://" .. title)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, vim.split(markdown, "\n", { plain = true }))
  vim.bo[buf].modifiable = false
  vim.bo[buf].filetype = "markdown"
  vim.keymap.set("n", "q", "<cmd>close<cr>", { buffer = buf, nowait = true })
  if vim.api.nvim_win_is_valid(previous) then
    vim.api.nvim_set_current_win(previous)
  end
  return buf
end

--- `{kind = "explanation", title, markdown}` (the server's explain answer) or nil.
local function explanation(result)
  if type(result) == "table" and result.kind == "explanation" and type(result.markdown) == "string" then
    return result
  end
  return nil
end

--- Cancel the localcode requests running for a buffer's client: implement/fix/explain and the
--- pending ghost-text and completion requests. Returns how many were cancelled.
function M.cancel(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local client = M.get_client(bufnr)
  local count = 0
  for id, running in pairs(state.running) do
    if not client or running.client.id == client.id then
      util.cancel(running.client, id)
      state.running[id] = nil
      count = count + 1
      running.finish({ code = -32800, message = "cancelled" }, nil)
    end
  end
  count = count + require("localcode.inline").cancel(bufnr)
  show("localcode: cancelled " .. count .. " request" .. (count == 1 and "" or "s"))
  return count
end

--- Text of a command result: a string, or a table with message/text/explanation fields.
local function result_text(result)
  if result == nil or result == vim.NIL then
    return nil
  end
  if type(result) == "string" then
    return result
  end
  if type(result) == "table" then
    for _, key in ipairs({ "markdown", "explanation", "text", "message", "summary" }) do
      if type(result[key]) == "string" and result[key] ~= "" then
        return result[key]
      end
    end
    return vim.inspect(result)
  end
  return tostring(result)
end

--- Run a localcode server command at the cursor. `action` is implement|fix|explain|health.
--- `on_done(err, result)` is called when the server answers (the edit itself arrives before,
--- as a workspace/applyEdit request that Neovim applies).
function M.run(action, instruction, opts)
  opts = opts or {}
  action = action or "implement"
  if not vim.tbl_contains(M.ACTIONS, action) then
    show("localcode: unknown action '" .. action .. "' (one of " .. table.concat(M.ACTIONS, ", ") .. ")",
      vim.log.levels.ERROR)
    return
  end
  local bufnr = opts.bufnr or vim.api.nvim_get_current_buf()
  if action == "cancel" then
    return M.cancel(bufnr)
  end
  local client = M.get_client(bufnr)
  if not client then
    show("localcode: no localcode server attached to this buffer", vim.log.levels.ERROR)
    return
  end
  local arguments = {}
  if action ~= "health" then
    local params = util.position_params(bufnr, client)
    local argument = { uri = params.textDocument.uri, position = params.position }
    if instruction and instruction ~= "" then
      argument.instruction = instruction
    end
    arguments = { argument }
  end
  local command = { title = "localcode: " .. action, command = "localcode." .. action, arguments = arguments }
  if action ~= "health" then
    show("localcode: " .. action .. " running…")
  end
  local request_id
  local finished = false
  -- Neovim drops the server's RequestCancelled reply, so a cancel finishes the request here
  local function finish(err, result)
    if finished then
      return
    end
    finished = true
    if request_id then
      state.running[request_id] = nil
    end
    local document = explanation(result)
    if err and err.code == -32800 then -- RequestCancelled: :LspLocalcode cancel
      show("localcode: " .. action .. " cancelled; nothing was changed")
    elseif err then
      show("localcode: " .. action .. " failed: " .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
    elseif document then
      show_document(document.title or "explanation", (document.title and ("# " .. document.title .. "\n\n") or "")
        .. document.markdown)
      show("localcode: " .. action .. " done: " .. (document.title or "explanation") .. " (opened beside)")
    elseif action == "explain" or action == "health" then
      show_text("localcode " .. action, result_text(result) or "(no answer)")
    else
      local text = result_text(result)
      show("localcode: " .. action .. " done" .. (text and (": " .. text) or ""))
    end
    if opts.on_done then
      opts.on_done(err, result)
    end
  end
  request_id = util.execute_command(client, command, bufnr, finish)
  if request_id and not finished then
    state.running[request_id] = { client = client, bufnr = bufnr, action = action, finish = finish }
  end
  return request_id
end

--- Map <Tab> (or `lhs`) in insert mode to accept the ghost text when one shows, and otherwise
--- to whatever it did before (your cmp or snippet mapping, or a plain <Tab>).
function M.map_tab(lhs)
  return require("localcode.inline").map_accept_or_fallback(lhs or "<Tab>")
end

local function command_complete(arglead, cmdline)
  local words = vim.split(cmdline, "%s+", { trimempty = true })
  if #words > 2 or (#words == 2 and cmdline:sub(-1) == " ") then
    return {}
  end
  return vim.tbl_filter(function(a)
    return a:find(arglead, 1, true) == 1
  end, M.ACTIONS)
end

--- Buffer-local :LspLocalcode [implement|fix|explain|health] [instruction].
local function define_command(bufnr)
  vim.api.nvim_buf_create_user_command(bufnr, "LspLocalcode", function(args)
    local action, instruction = args.args:match("^%s*(%S*)%s*(.-)%s*$")
    if action == "" then
      action = "implement"
    elseif not vim.tbl_contains(M.ACTIONS, action) then
      -- `:LspLocalcode make it faster` = implement with an instruction
      instruction = args.args
      action = "implement"
    end
    M.run(action, instruction, { bufnr = bufnr })
  end, {
    nargs = "*",
    complete = command_complete,
    desc = "localcode: implement|fix|explain|health|cancel at the cursor [instruction]",
  })
end

--- Called for every buffer the localcode client attaches to (the lsp config's on_attach).
function M.on_attach(client, bufnr)
  define_command(bufnr)
  if config.options.inline and config.options.inline.enabled then
    require("localcode.inline").attach(client, bufnr)
  end
end

--- $/progress the Neovim way: the LspProgress autocmd (0.10+) or LspProgressUpdate (0.8-0.9).
local function on_progress(client_id, token, value)
  if type(value) ~= "table" then
    return
  end
  local key = tostring(client_id) .. ":" .. tostring(token)
  if value.kind == "end" then
    state.progress[key] = nil
  else
    local text = table.concat(vim.tbl_filter(function(s)
      return s and s ~= ""
    end, { value.title, value.message, value.percentage and (value.percentage .. "%") or nil }), " ")
    state.progress[key] = text
  end
  if config.options.progress then
    local line = value.kind == "end" and ("localcode: " .. (value.message or "done")) or M.status()
    vim.api.nvim_echo({ { line, "Comment" } }, false, {})
  end
  vim.cmd("redrawstatus")
end

local function register_autocmds()
  if vim.fn.has("nvim-0.10") == 1 then
    vim.api.nvim_create_autocmd("LspProgress", {
      group = augroup,
      callback = function(ev)
        local client = vim.lsp.get_client_by_id(ev.data.client_id)
        if client and client.name == "localcode" and ev.data.params then
          on_progress(ev.data.client_id, ev.data.params.token, ev.data.params.value)
        end
      end,
    })
  end
end

--- Neovim < 0.11: start (or reuse) the client for a buffer ourselves.
local function start_legacy(bufnr)
  local ft = vim.bo[bufnr].filetype
  if not vim.tbl_contains(config.options.filetypes, ft) or vim.bo[bufnr].buftype ~= "" then
    return
  end
  local root = config.find_root(bufnr)
  local cfg = config.lsp_config()
  cfg.cmd = config.server_cmd(config.options, not config.project_trusted(root))
  cfg.cmd_cwd = root
  cfg.root_dir = root
  cfg.workspace_folders = { { uri = vim.uri_from_fname(root), name = root } }
  if vim.lsp.start then
    vim.lsp.start(cfg, { bufnr = bufnr })
  else -- 0.7
    state.clients = state.clients or {}
    local id = state.clients[root]
    if not id or not vim.lsp.get_client_by_id(id) then
      id = vim.lsp.start_client(cfg)
      state.clients[root] = id
    end
    if id then
      vim.lsp.buf_attach_client(bufnr, id)
    end
  end
end

--- Configure and enable the localcode client. Safe to call again with new options.
function M.setup(opts)
  config.set(opts)
  register_autocmds()
  if vim.fn.has("nvim-0.11") == 1 then
    vim.lsp.config("localcode", config.lsp_config())
    vim.lsp.enable("localcode")
  else
    vim.api.nvim_create_autocmd("FileType", {
      group = augroup,
      pattern = config.options.filetypes,
      callback = function(ev)
        start_legacy(ev.buf)
      end,
    })
    if vim.fn.has("nvim-0.10") == 0 then
      vim.api.nvim_create_autocmd("User", {
        group = augroup,
        pattern = "LspProgressUpdate",
        callback = function()
          for _, client in ipairs(util.clients()) do
            for _, msg in ipairs(vim.lsp.util.get_progress_messages()) do
              if msg.name == client.name then
                on_progress(client.id, msg.token or msg.title,
                  { kind = msg.done and "end" or "report", title = msg.title, message = msg.message,
                    percentage = msg.percentage })
              end
            end
          end
        end,
      })
    end
    -- buffers already open when setup() runs
    for _, buf in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_is_loaded(buf) and vim.bo[buf].filetype ~= "" then
        start_legacy(buf)
      end
    end
  end
  return M
end

M._state = state
return M
