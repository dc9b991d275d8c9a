-- Options of the localcode plugin and the LSP client configuration built from them.
local M = {}

---@class localcode.Options
M.defaults = {
  -- How to start the server. A list is used as is; nil picks `localcode serve` from PATH,
  -- or `<python> -m localcode_lsp serve` when `python` is set.
  cmd = nil,
  python = nil,
  filetypes = { "python", "javascript", "typescript", "rust", "go", "lua", "java", "c", "cpp" },
  root_markers = { "localcode.toml", "pyproject.toml", ".git" },
  -- Passed as initializationOptions: the same tables as localcode.toml, e.g.
  -- { generation = { candidates = 3 }, model = { path = "~/models/qwen2.5-coder-3b.gguf" } }.
  settings = {},
  -- Trust: a project with a localcode.toml runs its tests only after you trust that file
  -- (:trust, vim.secure.read). Projects without one follow `trust_without_config`: by default
  -- they are not trusted (the server starts with --untrusted: parse-only verification).
  trust_without_config = false,
  inline = {
    enabled = true,
    debounce_ms = 150,
    -- No keys are mapped unless you name them, e.g. { accept = "<M-l>", dismiss = "<C-]>" }
    -- (actions: accept, accept_word, accept_line, next, prev, dismiss, toggle, trigger). For
    -- <Tab>, use require("localcode").map_tab(): it falls back to your own <Tab> mapping.
    keys = {},
    hl_group = "Comment",
  },
  progress = true, -- echo $/progress stage lines
  log_level = nil, -- e.g. "DEBUG": passed as --log-level
}

---@type localcode.Options
M.options = vim.deepcopy(M.defaults)

--- The <Plug> name of each inline action (inline.keys uses these action names).
M.PLUG = {
  accept = "<Plug>(localcode-accept)",
  accept_word = "<Plug>(localcode-accept-word)",
  accept_line = "<Plug>(localcode-accept-line)",
  next = "<Plug>(localcode-next)",
  prev = "<Plug>(localcode-prev)",
  dismiss = "<Plug>(localcode-dismiss)",
  toggle = "<Plug>(localcode-toggle)",
  trigger = "<Plug>(localcode-trigger)",
}

function M.set(opts)
  opts = vim.deepcopy(opts or {})
  local inline = opts.inline or {}
  -- the old accept_key / dismiss_key options still work: they become inline.keys
  if inline.accept_key or inline.dismiss_key then
    inline.keys = vim.tbl_extend("keep", inline.keys or {},
      { accept = inline.accept_key or nil, dismiss = inline.dismiss_key or nil })
    inline.accept_key, inline.dismiss_key = nil, nil
  end
  M.options = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts)
  return M.options
end

--- The command that starts the server for these options.
function M.server_cmd(options, untrusted)
  options = options or M.options
  local cmd
  if type(options.cmd) == "table" then
    cmd = vim.deepcopy(options.cmd)
  elseif type(options.cmd) == "string" then
    cmd = { options.cmd, "serve" }
  elseif options.python then
    cmd = { options.python, "-m", "localcode_lsp", "serve" }
  else
    cmd = { "localcode", "serve" }
  end
  if options.log_level then
    table.insert(cmd, "--log-level")
    table.insert(cmd, options.log_level)
  end
  if untrusted then
    -- `--untrusted` is a global option of the CLI: it goes before the subcommand.
    for i, arg in ipairs(cmd) do
      if arg == "serve" then
        table.insert(cmd, i, "--untrusted")
        break
      end
    end
  end
  return cmd
end

--- Find the project root of a buffer's file from the root markers.
function M.find_root(bufnr, markers)
  markers = markers or M.options.root_markers
  local name = vim.api.nvim_buf_get_name(bufnr or 0)
  local start = name ~= "" and vim.fs.dirname(name) or vim.fn.getcwd()
  local root
  if vim.fs.root then
    root = vim.fs.root(start, markers)
  else
    local found = vim.fs.find(markers, { path = start, upward = true })[1]
    root = found and vim.fs.dirname(found)
  end
  root = vim.fn.fnamemodify(root or start, ":p")
  return (root:gsub("(.)/$", "%1"))
end

--- Is this project trusted to run its own code (tests, linters)?
--- With a localcode.toml the answer is Neovim's trust database (vim.secure.read).
function M.project_trusted(root, options)
  options = options or M.options
  local file = root .. "/localcode.toml"
  if vim.fn.filereadable(file) == 0 then
    return options.trust_without_config == true
  end
  if not (vim.secure and vim.secure.read) then
    return false -- Neovim < 0.9 has no trust database: never run project code
  end
  local ok, content = pcall(vim.secure.read, file)
  return ok and content ~= nil
end

--- The configuration table for vim.lsp.config / vim.lsp.start.
function M.lsp_config(options)
  options = options or M.options
  return {
    name = "localcode",
    cmd = function(dispatchers, config)
      local root = (config and config.root_dir) or vim.fn.getcwd()
      local trusted = M.project_trusted(root, options)
      return vim.lsp.rpc.start(M.server_cmd(options, not trusted), dispatchers, { cwd = root })
    end,
    filetypes = options.filetypes,
    root_markers = options.root_markers,
    init_options = vim.deepcopy(options.settings or {}),
    -- The server trusts a workspace only when told (the same decision as `--untrusted` above),
    -- and sends no popup beside an explanation this plugin opens as a buffer.
    before_init = function(params, client_config)
      local root = (client_config and client_config.root_dir) or vim.fn.getcwd()
      local init = type(params.initializationOptions) == "table" and params.initializationOptions or {}
      params.initializationOptions = vim.tbl_extend("force", init, {
        trusted = M.project_trusted(root, options),
        explanation_document = true,
      })
    end,
    on_attach = function(client, bufnr)
      require("localcode").on_attach(client, bufnr)
    end,
    settings = { localcode = vim.deepcopy(options.settings or {}) },
  }
end

return M
